"""DICOM Encapsulated STL: in the source CT's study and frame of reference, the
document byte for byte the STL, valid for dciodvfy (dicom3tools) and pydicom."""

from __future__ import annotations

import io

import pydicom
import pytest
import trimesh

from pipeline.errors import InputError
from pipeline.exchange.dicom_stl import ENCAPSULATED_STL_STORAGE, encapsulated_stl
from pipeline.exchange.dicom_study import read_study
from pipeline.exchange.scan import load_scan
from pipeline.exchange.stl import stl_bytes

IDENTITY = {
    "PatientName": "Doe^Jane",
    "PatientID": "ID-0042",
    "PatientBirthDate": "19500101",
    "PatientSex": "F",
    "AccessionNumber": "ACC77",
    "StudyID": "S1",
    "StudyDate": "20240102",
}


@pytest.fixture
def source(blobs, write_ct):
    paths = write_ct(blobs.hu, blobs.affine, extra=IDENTITY)
    volume, _ = load_scan(paths[0].parent)
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    return paths[0].parent, volume, headers


def _stl():
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=5.0)
    mesh.apply_translation([3.0, 10.0, -100.0])
    return stl_bytes(mesh, "L1 vertebra model")


def test_instance_in_the_source_study_with_the_stl_inside(source, dciodvfy):
    folder, volume, headers = source
    study = read_study(folder, volume.info.series_hash)
    stl = _stl()
    data = encapsulated_stl(stl, study, title="L1 vertebra model", instance_number=3)
    ds = pydicom.dcmread(io.BytesIO(data))
    src = headers[0]
    assert ds.SOPClassUID == ENCAPSULATED_STL_STORAGE == "1.2.840.10008.5.1.4.1.1.104.3"
    assert ds.Modality == "M3D"
    assert ds.StudyInstanceUID == src.StudyInstanceUID
    assert ds.FrameOfReferenceUID == src.FrameOfReferenceUID
    assert ds.SeriesInstanceUID != src.SeriesInstanceUID
    for keyword, value in IDENTITY.items():
        assert str(ds[keyword].value) == value, keyword
    assert ds.MIMETypeOfEncapsulatedDocument == "model/stl"
    assert bytes(ds.EncapsulatedDocument)[: ds.EncapsulatedDocumentLength] == stl
    assert ds.EncapsulatedDocumentLength == len(stl)
    unit = ds.MeasurementUnitsCodeSequence[0]
    assert (unit.CodeValue, unit.CodingSchemeDesignator) == ("mm", "UCUM")
    referenced = ds.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == src.SeriesInstanceUID
    assert {r.ReferencedSOPInstanceUID for r in referenced.ReferencedInstanceSequence} == {
        h.SOPInstanceUID for h in headers
    }
    assert {r.ReferencedSOPInstanceUID for r in ds.SourceInstanceSequence} == {h.SOPInstanceUID for h in headers}
    assert ds.InstanceNumber == 3 and ds.DocumentTitle == "L1 vertebra model"
    assert dciodvfy(data) == []
    # The same print gets the same instance UID (re-sending it updates, not duplicates).
    again = pydicom.dcmread(io.BytesIO(encapsulated_stl(stl, study, title="L1 vertebra model", instance_number=3)))
    assert again.SOPInstanceUID == ds.SOPInstanceUID


def test_identifiers_stay_out_of_the_study_repr(source):
    folder, volume, headers = source
    study = read_study(folder, volume.info.series_hash)
    text = repr(study)
    for secret in ("Doe", "ID-0042", "19500101", "ACC77", headers[0].StudyInstanceUID, headers[0].FrameOfReferenceUID):
        assert secret not in text


def test_blank_study_uid_is_derived_and_said(blobs, write_ct, dciodvfy):
    paths = write_ct(blobs.hu, blobs.affine, extra={"StudyInstanceUID": ""})
    volume, _ = load_scan(paths[0].parent)
    study = read_study(paths[0].parent, volume.info.series_hash)
    assert study.study_uid_derived and study.study_uid
    assert any("StudyInstanceUID" in w for w in study.warnings)
    again = read_study(paths[0].parent, volume.info.series_hash)
    assert again.study_uid == study.study_uid, "the derived study is stable: all prints of a scan share it"
    data = encapsulated_stl(_stl(), study, title="V1 vertebra model", instance_number=1)
    assert dciodvfy(data) == []


def test_nifti_input_cannot_be_exported(tmp_path, blobs):
    from pipeline.exchange.nifti import write_nifti

    write_nifti(tmp_path / "ct.nii.gz", blobs.hu, blobs.affine)
    with pytest.raises(InputError, match="--dicom needs a DICOM scan"):
        read_study(tmp_path / "ct.nii.gz", "0" * 12)
