"""media/encoded.py: the keyframe test of each codec's frames."""

from __future__ import annotations

from media.encoded import h264_nal_types, is_keyframe


def test_keyframe_detection() -> None:
    assert is_keyframe("VP8", b"\x10\x02\x00\x9d\x01\x2a")
    assert not is_keyframe("VP8", b"\x11\x02\x00")
    assert not is_keyframe("VP8", b"")
    assert is_keyframe("H264", b"\x00\x00\x00\x01\x67\x42" + b"\x00\x00\x01\x65\x88")
    assert not is_keyframe("H264", b"\x00\x00\x00\x01\x41\x9a")
    assert is_keyframe("opus", b"\xfc")


def test_h264_nal_types_of_an_annex_b_access_unit() -> None:
    sps, pps, idr = b"\x00\x00\x00\x01\x67\x42", b"\x00\x00\x01\x68\xce", b"\x00\x00\x01\x65\x88"
    assert h264_nal_types(sps + pps + idr) == [7, 8, 5]
    assert h264_nal_types(b"\x01\x02") == []
