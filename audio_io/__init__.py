"""Everything that touches sound: devices, WAV files, resampling, VAD and levels."""

from audio_io.format import SAMPLE_RATE, STEP_SAMPLES, STEP_SECONDS, UNIT_SAMPLES

__all__ = ["SAMPLE_RATE", "STEP_SAMPLES", "STEP_SECONDS", "UNIT_SAMPLES"]
