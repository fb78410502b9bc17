"""The duration bound of an audio file, read before a transcription is sent."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from costrouter.routing.operations.audio_file import audio_seconds_bound, read_audio_file, wav_seconds
from tests.calltypes import wav_audio


def test_a_wav_header_states_its_duration() -> None:
    assert wav_seconds(read_audio_file(wav_audio(2.5))) == 2.5
    assert wav_seconds(read_audio_file(wav_audio(1.0, byte_rate=8000))) == 1.0


def test_a_streamed_wav_without_a_data_size_counts_the_rest_of_the_file() -> None:
    audio = bytearray(wav_audio(2.0))
    audio[40:44] = (0xFFFFFFFF).to_bytes(4, "little")
    assert wav_seconds(read_audio_file(bytes(audio))) == 2.0


def test_other_files_are_bounded_by_their_size_at_8_kbits_and_capped() -> None:
    mp3 = b"ID3" + bytes(4997)
    assert wav_seconds(read_audio_file(mp3)) is None
    assert audio_seconds_bound(mp3, 3600) == 5
    assert audio_seconds_bound(mp3, 2) == 2


def test_a_file_object_is_left_where_it_was(tmp_path: Path) -> None:
    stream = io.BytesIO(wav_audio(1.0))
    stream.seek(10)
    assert audio_seconds_bound(stream, 3600) == 1.0
    assert stream.tell() == 10
    path = tmp_path / "call.wav"
    path.write_bytes(wav_audio(3.0))
    assert audio_seconds_bound(path, 3600) == 3.0
    with path.open("rb") as opened:
        assert audio_seconds_bound(("call.wav", opened), 3600) == 3.0


def test_a_file_name_alone_is_refused() -> None:
    with pytest.raises(TypeError, match="not str"):
        read_audio_file("call.wav")
