"""The source CT's patient and study, for the one output that must carry them.

osteoprint keeps patient identifiers out of everything it makes (``CTVolume``,
manifests, logs, file names). The opt-in DICOM export is the exception: a PACS files
a print with its patient only if the print carries the patient and study modules
of the scan it came from. This module re-reads those header attributes from the
source series, when and only when that export is asked for, and hands them to
:mod:`.dicom_stl` in a :class:`DicomStudy` whose ``repr`` hides them.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .dicom_scan import scan_folder, series_hash
from .nifti import is_nifti

#: Attributes copied from the source CT: Patient, Clinical Trial Subject, General
#: Study and Clinical Trial Study modules (PS3.3 C.7.1.1, C.7.1.3, C.7.2.1, C.7.2.3).
IDENTITY_KEYWORDS = (
    "SpecificCharacterSet",
    # Patient
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence",
    "TypeOfPatientID",
    "PatientBirthDate",
    "PatientBirthTime",
    "PatientSex",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientComments",
    "PatientIdentityRemoved",
    "DeidentificationMethod",
    "DeidentificationMethodCodeSequence",
    "ResponsibleOrganization",
    "ResponsiblePerson",
    "ResponsiblePersonRole",
    "PatientSpeciesDescription",
    "PatientBreedDescription",
    # Clinical Trial Subject
    "ClinicalTrialSponsorName",
    "ClinicalTrialProtocolID",
    "ClinicalTrialProtocolName",
    "ClinicalTrialSiteID",
    "ClinicalTrialSiteName",
    "ClinicalTrialSubjectID",
    "ClinicalTrialSubjectReadingID",
    # General Study
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "IssuerOfAccessionNumberSequence",
    "StudyDescription",
    # Clinical Trial Study
    "ClinicalTrialTimePointID",
    "ClinicalTrialTimePointDescription",
)
_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


@dataclass(frozen=True)
class DicomStudy:
    """The source series' patient, study and frame of reference (identifiers!).

    Never log, print or store this outside a DICOM export; its ``repr`` hides the
    values.

    Attributes
    ----------
    identity : pydicom.Dataset
        The source's attributes of :data:`IDENTITY_KEYWORDS` that are present.
    study_uid : str
        The source's StudyInstanceUID, or a UID derived from the series when the
        source has none (``study_uid_derived``).
    frame_of_reference_uid : str
        The source's FrameOfReferenceUID, or a derived one (``frame_derived``).
    position_reference_indicator : str
    series_uid : str
        The source's SeriesInstanceUID ("" when blank in the source).
    instances : tuple of (str, str)
        (SOP Class UID, SOP Instance UID) of every source image.
    warnings : tuple of str
        What was missing and derived (no identifiers in the text).
    """

    identity: object = field(repr=False)
    study_uid: str = field(repr=False)
    study_uid_derived: bool
    frame_of_reference_uid: str = field(repr=False)
    frame_derived: bool
    position_reference_indicator: str = field(repr=False)
    series_uid: str = field(repr=False)
    series_key: str = field(repr=False)
    instances: tuple = field(repr=False)
    warnings: tuple = ()


def read_study(scan: str | os.PathLike, series: str) -> DicomStudy:
    """Re-read the patient, study and instance references of a DICOM series.

    Parameters
    ----------
    scan : path
        The DICOM folder or file the volume was read from.
    series : str
        The volume's ``info.series_hash`` (which series of the folder).

    Raises
    ------
    InputError
        When ``scan`` is not DICOM (a NIfTI file has no study to file prints in) or
        the series is no longer there.
    """
    from pydicom.uid import generate_uid

    path = Path(scan)
    if path.is_file() and is_nifti(path):
        raise InputError(
            path,
            "--dicom needs a DICOM scan: a NIfTI file has no patient or study that a PACS could file the prints with",
        )
    folder = path.parent if path.is_file() else path
    found = scan_folder(folder)
    key = next((k for k in found.series if series_hash(k) == series), None)
    if key is None:
        raise InputError(folder, f"series {series} is no longer in the folder; cannot read its study for --dicom")
    paths = list(dict.fromkeys(rec.path for rec in found.series[key]))
    headers = [_header(p) for p in paths]
    first = headers[0]
    identity = _identity(first)
    notes = []
    study_uid = str(first.get("StudyInstanceUID", "") or "").strip()
    study_derived = not study_uid
    if study_derived:
        study_uid = generate_uid(entropy_srcs=["osteoprint study of series", key])
        notes.append(
            "the source series has no StudyInstanceUID (blanked by an anonymiser?): the DICOM "
            "prints carry a study UID derived from the series, so a PACS files them as a study of their own"
        )
    frame = str(first.get("FrameOfReferenceUID", "") or "").strip()
    frame_derived = not frame
    if frame_derived:
        frame = generate_uid(entropy_srcs=["osteoprint frame of reference of series", key])
        notes.append("the source series has no FrameOfReferenceUID: the DICOM prints carry a derived one")
    instances = []
    for ds in headers:
        meta = getattr(ds, "file_meta", None)
        sop_class = (
            str(ds.get("SOPClassUID", "") or (meta.get("MediaStorageSOPClassUID", "") if meta else ""))
            or _CT_IMAGE_STORAGE
        )
        sop_uid = str(ds.get("SOPInstanceUID", "") or (meta.get("MediaStorageSOPInstanceUID", "") if meta else ""))
        if sop_uid:
            instances.append((sop_class, sop_uid))
    series_uid = str(first.get("SeriesInstanceUID", "") or "").strip()
    if not series_uid or study_derived:
        notes.append("the source images have no Study or Series UID, so the DICOM prints cannot reference them")
    return DicomStudy(
        identity=identity,
        study_uid=study_uid,
        study_uid_derived=study_derived,
        frame_of_reference_uid=frame,
        frame_derived=frame_derived,
        position_reference_indicator=str(first.get("PositionReferenceIndicator", "") or ""),
        series_uid=series_uid,
        series_key=key,
        instances=tuple(dict.fromkeys(instances)),
        warnings=tuple(notes),
    )


def _header(path: Path):
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception as exc:  # pydicom raises many types on corrupt headers
        raise InputError(path, f"cannot re-read the DICOM header for --dicom ({type(exc).__name__})") from None


def _identity(ds):
    from pydicom.dataset import Dataset

    out = Dataset()
    for keyword in IDENTITY_KEYWORDS:
        if keyword in ds:
            out[keyword] = ds[keyword]
    return out
