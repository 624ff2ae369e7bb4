"""The embed stage's process-level model cache stays bounded."""

from __future__ import annotations

from speechmine.pipeline import embed


def test_at_most_two_models_stay_loaded_in_a_process() -> None:
    embed._ENCODERS.clear()
    a = embed.get_encoder("toy", "en", {"dim": 32})
    assert embed.get_encoder("toy", "en", {"dim": 32}) is a  # reused while recent
    embed.get_encoder("toy", "en", {"dim": 40})
    embed.get_encoder("toy", "en", {"dim": 48})
    assert len(embed._ENCODERS) == embed.MAX_LOADED_ENCODERS == 2
    assert embed.get_encoder("toy", "en", {"dim": 32}) is not a  # evicted, built again
