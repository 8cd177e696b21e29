"""audio_io building blocks: streaming resampling, the speaker ring, WAV sink, VADs, levels."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from audio_io.format import SAMPLE_RATE, STEP_SAMPLES
from audio_io.levels import NoiseFloor, audible_spans
from audio_io.speaker import FADE_SAMPLES, SpeakerQueue
from audio_io.vad import SileroVad, WebRtcVad
from audio_io.wav import WavInput, WavOutput


def read_all(path: Path) -> np.ndarray:
    wav = WavInput(path)
    chunks = []
    while (chunk := asyncio.run(wav.read())) is not None:
        chunks.append(chunk)
    wav.close()
    return np.concatenate(chunks)


def test_streamed_input_equals_one_shot_resampling(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    signal = (0.3 * np.sin(np.arange(44_100 * 3) * 2 * np.pi * 440 / 44_100) + 0.01 * rng.standard_normal(44_100 * 3))
    sf.write(tmp_path / "a.wav", signal, 44_100, subtype="FLOAT")
    streamed = read_all(tmp_path / "a.wav")
    one_shot = soxr.resample(signal.astype(np.float32), 44_100, SAMPLE_RATE)
    assert streamed.size % STEP_SAMPLES == 0
    assert np.allclose(streamed[: one_shot.size], one_shot, atol=1e-5)
    assert np.all(streamed[one_shot.size :] == 0)


def test_16k_input_passes_through_exactly(tmp_path: Path) -> None:
    signal = np.linspace(-0.5, 0.5, 5000, dtype=np.float32)
    sf.write(tmp_path / "b.wav", signal, SAMPLE_RATE, subtype="FLOAT")
    out = read_all(tmp_path / "b.wav")
    assert np.array_equal(out[:5000], signal) and out.size == 2 * STEP_SAMPLES


def test_speaker_queue_wraps_flushes_with_a_fade_and_counts() -> None:
    q = SpeakerQueue(capacity=1000)
    q.push(np.ones(700, np.float32))
    assert q.pull(300).sum() == 300
    q.push(np.full(700, 2.0, np.float32))  # wraps around the ring; 100 samples do not fit
    assert (q.queued, q.overflowed) == (1000, 100)
    dropped = q.flush()
    assert dropped == 1000 - FADE_SAMPLES and q.dropped == dropped
    tail = q.pull(FADE_SAMPLES + 10)
    assert tail[0] < 1.0 and np.all(np.diff(tail[:FADE_SAMPLES]) < 0) and np.all(tail[FADE_SAMPLES:] == 0)
    assert q.played == 300 + FADE_SAMPLES


def test_a_paused_queue_fades_out_keeps_the_rest_and_fades_back_in_where_it_stopped() -> None:
    q = SpeakerQueue(capacity=1000)
    q.push(np.arange(1, 501, dtype=np.float32))  # each sample says where it was in the reply
    q.pull(100)
    q.pause()
    held = q.pull(200)
    assert np.all(np.diff(held[:FADE_SAMPLES] / np.arange(101, 101 + FADE_SAMPLES)) < 0)  # a fade-out ...
    assert np.all(held[FADE_SAMPLES:] == 0) and q.played == 100 + FADE_SAMPLES  # ... then silence, nothing lost
    assert q.queued == 400 - FADE_SAMPLES
    q.resume()
    back = q.pull(200)
    first = 101 + FADE_SAMPLES  # the reply goes on from the first sample nobody heard
    gain = back[:FADE_SAMPLES] / np.arange(first, first + FADE_SAMPLES)
    assert 0 < gain[0] < 0.05 and np.all(np.diff(gain) > 0) and np.isclose(gain[-1], 1.0)
    assert np.array_equal(back[FADE_SAMPLES:], np.arange(first + FADE_SAMPLES, first + 200, dtype=np.float32))
    assert q.pauses == 1


def test_a_cut_while_paused_drops_everything_unheard() -> None:
    q = SpeakerQueue(capacity=1000)
    q.push(np.ones(600, np.float32))
    q.pause()
    q.pull(FADE_SAMPLES + 20)  # the fade-out is out: the speaker is silent
    assert q.flush() == 600 - FADE_SAMPLES and q.queued == 0 and not q.paused
    assert not q.pull(100).any()  # no second fade-out after the silence
    q.push(np.ones(50, np.float32))
    assert q.pull(50).sum() == 50  # the next turn plays as it is, no fade-in


def test_pull_into_pads_with_silence_and_says_how_much_was_audio() -> None:
    q = SpeakerQueue(capacity=100)
    q.push(np.ones(30, np.float32))
    out = np.full(50, 9.0, np.float32)
    assert q.pull_into(out) == 30
    assert np.all(out[:30] == 1) and np.all(out[30:] == 0)


def test_wav_sink_is_readable_while_still_open(tmp_path: Path) -> None:
    out = WavOutput(tmp_path / "o.wav")
    out.queue.push(np.full(STEP_SAMPLES * 7, 0.25, np.float32))
    for _ in range(6):
        out.advance()
    info = sf.info(tmp_path / "o.wav")
    assert info.frames == 6 * STEP_SAMPLES
    out.close()
    assert sf.info(tmp_path / "o.wav").frames == 6 * STEP_SAMPLES


@pytest.fixture(params=[WebRtcVad, SileroVad])
def vad_and_sentence(request, speech):
    """Each detector, and a spoken sentence for it to hear."""
    if request.param is SileroVad:
        pytest.importorskip("silero_vad")
    return request.param(), read_all(speech("The quick brown fox jumps over the lazy dog."))


def test_vads_hear_speech_and_not_silence(vad_and_sentence) -> None:
    vad, audio = vad_and_sentence
    probs = [vad.speech_prob(audio[i : i + STEP_SAMPLES]) for i in range(0, audio.size, STEP_SAMPLES)]
    silence = [vad.speech_prob(np.zeros(STEP_SAMPLES, np.float32)) for _ in range(5)]
    assert np.mean(np.array(probs) >= 0.5) > 0.6
    assert max(silence) < 0.5


def test_vads_say_whether_a_chunk_ended_in_speech(vad_and_sentence) -> None:
    vad, audio = vad_and_sentence
    voiced = max(range(0, audio.size - STEP_SAMPLES, STEP_SAMPLES),
                 key=lambda i: float(np.sqrt(np.mean(audio[i: i + STEP_SAMPLES] ** 2))))
    chunk = np.zeros(2 * STEP_SAMPLES, np.float32)
    chunk[STEP_SAMPLES - 1024:STEP_SAMPLES] = audio[voiced: voiced + 1024]  # the voice comes back at the end
    vad.speech_prob(np.zeros(STEP_SAMPLES, np.float32))
    assert not vad.ends_in_speech
    vad.speech_prob(chunk[:STEP_SAMPLES])
    assert vad.ends_in_speech
    vad.speech_prob(chunk[STEP_SAMPLES:])
    assert not vad.ends_in_speech
    vad.reset()
    assert not vad.ends_in_speech


def test_a_sound_is_more_than_the_room_however_soft() -> None:
    floor = NoiseFloor()
    for _ in range(5):
        floor.observe(0.0)  # digital silence
    assert floor.sounds(10 ** (-55 / 20)) and not floor.sounds(10 ** (-65 / 20))
    assert floor.silent(10 ** (-55 / 20))  # (under quiet(): the room, to the silence a turn waits for)
    room = NoiseFloor()
    for _ in range(5):
        room.observe(10 ** (-30 / 20))  # a loud room
    assert not room.sounds(10 ** (-24 / 20)) and room.sounds(10 ** (-16 / 20))  # 12 dB over it


def test_audible_spans_merge_short_gaps() -> None:
    x = np.zeros(SAMPLE_RATE, np.float32)
    x[1600:3200] = 0.1
    x[4160:6400] = 0.1  # a 60 ms gap
    assert audible_spans(x) == [(0.1, 0.2), (0.26, 0.4)]
    assert audible_spans(x, merge_gap_s=0.1) == [(0.1, 0.4)]


def test_the_noise_floor_is_the_quietest_recent_chunk_within_its_bounds() -> None:
    def db(x: float) -> float:
        return 10 ** (x / 20)

    floor = NoiseFloor(window=4)
    assert floor.silent(db(-46)) and not floor.silent(db(-44))  # nothing heard yet: never under -45 dBFS
    for level in (db(-30), db(-20), db(-30), db(-20)):  # speech only: the floor is capped at -40 dBFS
        floor.observe(level)
    assert floor.quiet() == pytest.approx(2 * db(-40))
    for level in (db(-38), db(-38), db(-38), db(-38)):  # a steady fan at -38 dBFS becomes the room
        floor.observe(level)
    assert floor.silent(db(-36)) and not floor.silent(db(-30))  # within 6 dB of the cap, and a word over it
    for level in (db(-30), db(-31), db(-30), db(-30)):  # a room louder than any floor (-34 dBFS) can be:
        floor.observe(level)
    assert floor.silent(db(-30)) and floor.silent(db(-25))  # ... no sound can be told from it, all is the room
    floor.reset()
    floor.observe(0.0)
    assert floor.quiet() == pytest.approx(db(-45))


def test_recorder_files_are_readable_while_recording_and_complete_after(tmp_path: Path) -> None:
    import time

    from audio_io.record import NAMES, Recorder

    rec = Recorder(tmp_path / "rec")
    chunk = np.full(STEP_SAMPLES, 0.25, np.float32)
    for _ in range(7):
        rec.chunk(chunk, chunk * 0.5, chunk * 0.1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sf.info(tmp_path / "rec" / "mic.wav").frames < 6 * STEP_SAMPLES:
        time.sleep(0.02)
    assert sf.info(tmp_path / "rec" / "mic.wav").frames >= 6 * STEP_SAMPLES  # a valid header mid-recording
    rec.close()
    for name, level in zip(NAMES, (0.125, 0.25, 0.025), strict=True):
        audio, rate = sf.read(tmp_path / "rec" / name, dtype="float32")
        assert rate == SAMPLE_RATE and audio.size == 7 * STEP_SAMPLES
        assert np.allclose(audio, level, atol=1e-3), name


def test_a_reset_webrtc_vad_hears_the_next_session_as_a_fresh_one_does() -> None:
    """webrtcvad adapts to what it heard: a detector reused without a reset hears a quiet speaker
    differently after a loud session (so a shared model's last conversation decided the next)."""
    from audio_io.wav import load_mono16k

    clips = Path(__file__).resolve().parents[1] / "examples" / "scenarios" / "clips"
    rng = np.random.default_rng(0)
    loud = load_mono16k(clips / "table.wav")
    loud = np.concatenate([loud, rng.standard_normal(32000).astype(np.float32) * 0.05, loud])
    speech = load_mono16k(clips / "weather.wav")
    quiet = np.concatenate([np.zeros(8000, np.float32), speech, np.zeros(8000, np.float32)]) * 0.05
    quiet = (quiet + rng.standard_normal(quiet.size) * 0.003).astype(np.float32)

    def hear(vad: WebRtcVad, x: np.ndarray) -> list[float]:
        return [vad.speech_prob(x[i:i + STEP_SAMPLES]) for i in range(0, x.size - STEP_SAMPLES + 1, STEP_SAMPLES)]

    fresh = hear(WebRtcVad(3), quiet)
    reused = WebRtcVad(3)
    hear(reused, loud)
    assert hear(reused, quiet) != fresh  # the state the reset has to clear
    reused = WebRtcVad(3)
    hear(reused, loud)
    reused.reset()
    assert hear(reused, quiet) == fresh
