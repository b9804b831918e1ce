"""The two halves of a same-step check (``dragon_same_step.py``, ``vbpr_same_step.py``):
:func:`mmrec_model` builds one of MMRec's models in MMRec's own environment (its code, its
data pipeline, nothing of graphrec's; call it only inside MMRec's venv), and
:func:`mmrec_dump` runs a script's MMRec half there in a subprocess; :func:`graphrec_dataset`
reads the same MMRec folder as graphrec's zoo does."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PEERS = REPO.parent / "shared" / "peers"


def graphrec_dataset(folder: Path, cache: Path) -> Any:
    """graphrec's Dataset of the MMRec folder ``folder``, read as the zoo reads it (one
    torch thread, as the zoo's runs)."""
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(REPO))
    import torch

    torch.set_num_threads(1)
    from run import graphrec_data

    from graphrec.data import Dataset

    return Dataset.load(graphrec_data(folder, cache))


def mmrec_dump(script: str, mmrec: Path, args: list[str], dump: Path) -> None:
    """Run ``script`` with ``args --_mmrec-side DUMP`` in MMRec's venv (one thread): its
    MMRec half writes the step to ``dump``."""
    subprocess.run([str(mmrec / "venv" / "bin" / "python"), script, *args, "--_mmrec-side", str(dump)],
                   check=True, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))


def mmrec_model(mmrec: Path, folder: Path, name: str, point: dict[str, Any], seed: int = 0) -> tuple[Any, Any]:
    """MMRec's model ``name`` at ``point`` on the MMRec folder ``folder``, seeded as MMRec
    seeds a run, and its shuffled training loader (one thread, CPU)."""
    import torch

    torch.set_num_threads(1)
    tv, tvt, tvf = (types.ModuleType(n) for n in
                    ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"))
    tvt.functional, tv.transforms = tvf, tvt
    tvf.pad = tvf.resize = lambda *a, **k: None  # raw-image pipelines, unused here
    sys.modules.update({"torchvision": tv, "torchvision.transforms": tvt, "torchvision.transforms.functional": tvf})
    sys.path.insert(0, str(PEERS))
    import run_mmrec

    try:
        import torch_scatter  # noqa: F401
    except ImportError:
        sys.modules["torch_scatter"] = run_mmrec.scatter_stand_in(torch)
    src = mmrec / "src"
    os.chdir(src)
    sys.path.insert(0, str(src))
    from utils.configurator import Config
    from utils.dataloader import TrainDataLoader
    from utils.dataset import RecDataset
    from utils.logger import init_logger
    from utils.utils import get_model, init_seed

    cfg = {"use_gpu": False, "gpu_id": 0, "data_path": str(folder.parent) + "/", "seed": [seed],
           "hyper_parameters": ["seed"], **{k: [v] for k, v in point.items()}}
    config = Config(name, folder.name, cfg)
    for k, v in point.items():
        config[k] = v
    config["seed"] = seed
    init_logger(config)
    init_seed(seed)
    dataset = RecDataset(config)
    train_ds, valid_ds, test_ds = dataset.split()
    for part in (dataset, train_ds, valid_ds, test_ds):
        str(part)  # MMRec sets inter_num while printing a dataset
    train = TrainDataLoader(config, train_ds, batch_size=config["train_batch_size"], shuffle=True)
    train.pretrain_setup()
    return get_model(name)(config, train), train
