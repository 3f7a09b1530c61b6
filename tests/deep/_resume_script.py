"""A training run that checkpoints every epoch, for the kill-and-resume test.

``python _resume_script.py RUN_DIR OUT_FILE SLEEP`` trains (resuming from
``RUN_DIR/checkpoint.pt`` when present) and saves the final model state and history to
``OUT_FILE``. ``SLEEP`` seconds are spent in every optimizer step, so the test can kill
the process between two checkpoints; it does not change any number.

Randomness exercised: per-task data with temperature sampling, dropout (global RNG),
random loss weighting (its own generator), Adam state, best-model selection.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from polytask.data import MultiTaskData
from polytask.deep.architectures import MLP, SharedBottom
from polytask.deep.trainer import Trainer
from polytask.deep.weighting import RLW


def main(run_dir: str, out_file: str, sleep: float) -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    w = rng.normal(size=4)
    tasks = {name: (X := rng.normal(size=(n, 4)), X @ w + 0.1 * rng.normal(size=n))
             for name, n in (("a", 60), ("b", 25))}
    data = MultiTaskData.from_tasks(tasks)
    train, val = data.train_test_split(0.7, random_state=0)
    torch.manual_seed(0)
    model = SharedBottom(MLP([4, 16], dropout=0.2, activate_last=True),
                         {t: MLP([16, 8, 1], dropout=0.2) for t in ("a", "b")})

    class SlowAdam(torch.optim.Adam):
        def step(self, closure=None):  # type: ignore[no-untyped-def, override]
            time.sleep(sleep)
            return super().step(closure)

    trainer = Trainer(max_epochs=8, batch_size=8, sampling="temperature", run_dir=run_dir,
                      seed=7, progress=False, tensorboard=False)
    history = trainer.fit(model, ["a", "b"], RLW(2, generator=11),
                          lambda groups: SlowAdam(groups, lr=0.01), train, val)
    torch.save({"model": model.state_dict(), "history": history.to_json()}, out_file)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
