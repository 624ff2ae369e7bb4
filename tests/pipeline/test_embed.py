"""The embed stage: a bounded model cache, and a progress bar that moves per batch."""

from __future__ import annotations

from speechmine.encoders import resolve
from speechmine.pipeline import embed


def test_at_most_two_models_stay_loaded_in_a_process() -> None:
    embed._ENCODERS.clear()
    a = embed.get_encoder("toy", "en", {"dim": 32})
    assert embed.get_encoder("toy", "en", {"dim": 32}) is a  # reused while recent
    embed.get_encoder("toy", "en", {"dim": 40})
    embed.get_encoder("toy", "en", {"dim": 48})
    assert len(embed._ENCODERS) == embed.MAX_LOADED_ENCODERS == 2
    assert embed.get_encoder("toy", "en", {"dim": 32}) is not a  # evicted, built again


def test_the_embed_bar_moves_per_batch_not_per_chunk(tmp_path, monkeypatch) -> None:
    """A shard of 100 rows with batches of 8 moves the bar 13 times (it used to move once
    per 4,096 rows: a speech shard sat at 0 % for minutes)."""
    import numpy as np
    import tqdm.auto

    from speechmine.pipeline.stage import Stage

    updates: list[int] = []

    class Bar:
        def __init__(self, *a, **k) -> None: ...
        def update(self, n: int) -> None:
            updates.append(n)
        def __enter__(self) -> Bar:
            return self
        def __exit__(self, *exc) -> None: ...

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    shard = tmp_path / "en.txt"
    shard.write_text("".join(f"line {i}\n" for i in range(100)))
    np.save(tmp_path / "rows.npy", np.arange(100, dtype=np.int64))
    enc_id = resolve("toy").identity({"batch_size": 8}, "en")
    job = embed.EmbedJob(stage=Stage("embed", 1, config={"encoder": enc_id}),
                         work=str(tmp_path), shard=str(shard),
                         rows_file=str(tmp_path / "rows.npy"), rows_range=None, encoder="toy",
                         encoder_options={"batch_size": 8}, lang="en", modality="text",
                         fp16=False)
    path, now = embed.run_embed_job(job)
    assert now and np.load(path).shape == (100, 64)
    assert len(updates) == 13 and sum(updates) == 100
