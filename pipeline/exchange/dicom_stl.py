"""DICOM Encapsulated STL: a print as an instance a PACS files with its patient.

Encapsulated STL Storage (SOP class 1.2.840.10008.5.1.4.1.1.104.3, PS3.3 A.85),
modality M3D, in the study and frame of reference of the CT it was made from, units
millimetre (UCUM "mm"), referencing every image of the source series. The
encapsulated document is the STL file byte for byte. This is the only output of
osteoprint that carries patient identifiers (see :mod:`.dicom_study`).
"""

from __future__ import annotations

import hashlib
import io
from datetime import datetime

from .. import __version__
from .dicom_study import DicomStudy

ENCAPSULATED_STL_STORAGE = "1.2.840.10008.5.1.4.1.1.104.3"
#: Series number of the prints' series (unlikely to clash with a scanner's).
SERIES_NUMBER = 9100


def prints_series_uid(study: DicomStudy) -> str:
    """SeriesInstanceUID of the prints made from ``study``'s series (stable: the same
    scan always gets the same prints series)."""
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=["osteoprint prints series", study.series_key, study.study_uid])


def encapsulated_stl(
    stl: bytes,
    study: DicomStudy,
    *,
    title: str,
    instance_number: int,
    series_uid: str | None = None,
    created: datetime | None = None,
) -> bytes:
    """A DICOM Part 10 file (bytes) encapsulating one STL file.

    Parameters
    ----------
    stl : bytes
        The binary STL file (mm, LPS), stored unchanged.
    study : DicomStudy
        The source CT's patient, study and frame of reference.
    title : str
        Document Title, e.g. "L1 vertebra model".
    instance_number : int
        Instance Number within the prints' series.
    series_uid : str, optional
        Default :func:`prints_series_uid`.
    created : datetime, optional
        Content date and time (default now).

    Returns
    -------
    bytes
        Explicit VR little endian; the SOP Instance UID is derived from the series
        and the STL's SHA-256, so the same print always gets the same UID.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

    series_uid = series_uid or prints_series_uid(study)
    created = created or datetime.now()
    ds = Dataset()
    for element in study.identity:
        ds.add(element)
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
        "StudyID",
        "AccessionNumber",
    ):
        if keyword not in ds:
            setattr(ds, keyword, "")  # Type 2: present, empty when unknown
    ds.SOPClassUID = ENCAPSULATED_STL_STORAGE
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[series_uid, hashlib.sha256(stl).hexdigest()])
    ds.StudyInstanceUID = study.study_uid
    # Encapsulated Document Series
    ds.Modality = "M3D"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = SERIES_NUMBER
    ds.SeriesDescription = "osteoprint prints"
    # Frame of Reference: the STL's vertices are patient coordinates of the source CT.
    ds.FrameOfReferenceUID = study.frame_of_reference_uid
    ds.PositionReferenceIndicator = study.position_reference_indicator
    # General and Enhanced General Equipment: the software that made the model.
    ds.Manufacturer = "osteoprint"
    ds.ManufacturerModelName = "osteoprint"
    ds.DeviceSerialNumber = "osteoprint"
    ds.SoftwareVersions = __version__
    # Encapsulated Document
    ds.InstanceNumber = int(instance_number)
    ds.ContentDate = created.strftime("%Y%m%d")
    ds.ContentTime = created.strftime("%H%M%S")
    ds.AcquisitionDateTime = ""
    ds.BurnedInAnnotation = "NO"
    ds.DocumentTitle = title[:64]
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "model/stl"
    if study.instances and study.series_uid and not study.study_uid_derived:
        # Source Instance Sequence names the images the model was made from; the
        # Common Instance Reference module places them in their series, which is in
        # the prints' own study.
        ds.SourceInstanceSequence = [_reference(c, i) for c, i in study.instances]
        series = Dataset()
        series.SeriesInstanceUID = study.series_uid
        series.ReferencedInstanceSequence = [_reference(c, i) for c, i in study.instances]
        ds.ReferencedSeriesSequence = [series]
    # A binary STL is 84 + 50 n bytes: always even, so never padded.
    ds.EncapsulatedDocument = stl
    ds.EncapsulatedDocumentLength = len(stl)
    # Manufacturing 3D Model: the coordinates are millimetres.
    ds.MeasurementUnitsCodeSequence = [_code("mm", "UCUM", "mm")]

    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _reference(sop_class: str, sop_instance: str):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return item


def _code(value: str, scheme: str, meaning: str):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item
