"""hub/sfu/rtp.py: keyframes found in RTP payloads, continuous rewriting across switches."""

from __future__ import annotations

import random
from itertools import pairwise

from aiortc.rtp import RtpPacket

from hub.sfu import rtp


def test_vp8_keyframe_start_reads_the_descriptor_and_the_p_bit() -> None:
    # X=1, S=1, PID=0; extension I=1 with a 15-bit picture id; VP8 header P=0 (key)
    assert rtp.vp8_keyframe_start(bytes([0x90, 0x80, 0x80 | 0x12, 0x34, 0x10, 0, 0]))
    assert not rtp.vp8_keyframe_start(bytes([0x90, 0x80, 0x80 | 0x12, 0x34, 0x11, 0, 0]))  # P=1
    assert not rtp.vp8_keyframe_start(bytes([0x80, 0x80, 0x12, 0x10]))  # not a partition start
    assert not rtp.vp8_keyframe_start(bytes([0x11, 0x10]))  # partition 1
    assert rtp.vp8_keyframe_start(bytes([0x10, 0x9c]))  # no extension, key
    # I (7-bit id), L and T/K bytes skipped
    assert rtp.vp8_keyframe_start(bytes([0x90, 0xE0, 0x05, 0x01, 0x20, 0x10]))
    assert not rtp.vp8_keyframe_start(b"\x90")


def test_h264_keyframe_start_in_single_nal_stap_a_and_fu_a() -> None:
    assert rtp.h264_keyframe_start(bytes([0x65, 1]))  # IDR slice
    assert rtp.h264_keyframe_start(bytes([0x67, 1]))  # SPS
    assert not rtp.h264_keyframe_start(bytes([0x41, 1]))  # non-IDR slice
    sps, pps = bytes([0x67, 0x42, 0, 0x1F]), bytes([0x68, 0xCE])
    stap = bytes([0x78]) + len(pps).to_bytes(2, "big") + pps + len(sps).to_bytes(2, "big") + sps
    assert rtp.h264_keyframe_start(stap)
    assert not rtp.h264_keyframe_start(bytes([0x78]) + len(pps).to_bytes(2, "big") + pps)
    assert rtp.h264_keyframe_start(bytes([0x7C, 0x85, 0]))  # FU-A start of an IDR
    assert not rtp.h264_keyframe_start(bytes([0x7C, 0x05, 0]))  # FU-A middle
    assert not rtp.h264_keyframe_start(bytes([0x7C, 0x81, 0]))  # FU-A start of a P slice


def test_rewriter_keeps_sequence_and_timestamps_continuous_across_switches() -> None:
    rw = rtp.Rewriter(rng=random.Random(1))
    first = rw.map(65534, 4_294_967_000, now=10.0)
    assert first is not None
    seqs = [first[0]] + [rw.map(s, 4_294_967_000 + 3000, 10.1)[0]  # type: ignore[index]
                         for s in (65535, 0, 1)]
    assert [(b - a) & 0xFFFF for a, b in pairwise(seqs)] == [1, 1, 1]
    last_ts = rw.last_ts
    assert rw.map(65000, 0, 10.2) is None  # older than the start of this source: dropped
    rw.rebase()  # another source, 0.5 s later, with unrelated numbers
    switched = rw.map(17, 123456, now=10.6)
    assert switched is not None
    assert (switched[0] - seqs[-1]) & 0xFFFF == 1
    assert (switched[1] - last_ts) & 0xFFFFFFFF == 45000  # 0.5 s at 90 kHz
    assert rw.map(18, 123456 + 3000, 10.7) == ((switched[0] + 1) & 0xFFFF,
                                                (switched[1] + 3000) & 0xFFFFFFFF)
    late = rw.map(17, 123456, 10.8)  # a retransmission arriving late keeps its place
    assert late == switched


def test_rewritten_packet_parses_with_aiortc() -> None:
    data = rtp.rtp_packet(marker=True, payload_type=97, seq=513, ts=90000, ssrc=0xDEADBEEF,
                          payload=b"\x10\x00abc", extension=b"\xbe\xde\x00\x01\x10\x31\x00\x00",
                          padding=4)
    packet = RtpPacket.parse(data)
    assert (packet.marker, packet.payload_type, packet.sequence_number, packet.timestamp,
            packet.ssrc) == (1, 97, 513, 90000, 0xDEADBEEF)
    assert packet.payload == b"\x10\x00abc" and packet.padding_size == 4


def test_history_answers_only_what_it_still_has() -> None:
    history = rtp.History(size=4)
    for seq in range(10, 16):
        history.add(seq, bytes([seq]))
    assert history.get(15) == b"\x0f" and history.get(12) == b"\x0c"
    assert history.get(11) is None  # overwritten by 15
    assert history.get(99) is None
