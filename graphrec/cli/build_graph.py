"""Build and store item graphs: fused-feature kNN and/or training co-interactions.

Example:

    graphrec build-graph --recipe graphs/scientific.yaml
    graphrec build-graph --data data/lfm2k --kind knn --modalities text --k 10 --out graphs/lfm2k
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from graphrec._atomic import check_output, check_output_folder
from graphrec.cli._common import ARGV, Quiet, check_apart, command_progress, resolve_device, set_threads, user_errors
from graphrec.errors import ConfigError

DEFAULTS: dict[str, Any] = {
    "kind": "both",
    "modalities": None,
    "k": 10,
    "weighting": "cosine",
    "symmetric": False,
    "include_self": False,
    "cooccur_top_k": None,
    "cooccur_min_count": 1,
    "normalization": "none",
    "backend": "auto",
    "cold_start": 0.0,
    "cold_protocol": "papers",
    "seed": 0,
    "out": None,
}
RECIPE_KEYS = set(DEFAULTS) | {"source", "data"}
#: options that act on one kind of graph only (the others act on every kind)
KNN_OPTIONS = ("modalities", "k", "weighting", "include_self", "backend")
COOCCUR_OPTIONS = ("cooccur_top_k", "cooccur_min_count")  # cooccur and user-cooccur
#: options that act on the cold-start split only
COLD_OPTIONS = ("cold_protocol", "seed")
# what each recipe value must be (YAML types), and how the message names it
_TEXT, _COUNT, _FLAG = (str,), (int,), (bool,)
RECIPE_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "kind": (_TEXT, "knn, cooccur, user-cooccur or both"),
    "modalities": ((str, list), "a modality name or a list of them, e.g. [image, text]"),
    "k": (_COUNT, "a whole number, e.g. 10"),
    "weighting": (_TEXT, "cosine or binary"),
    "symmetric": (_FLAG, "true or false"),
    "include_self": (_FLAG, "true or false"),
    "cooccur_top_k": ((int, type(None)), "a whole number, or null for all"),
    "cooccur_min_count": (_COUNT, "a whole number, e.g. 1"),
    "normalization": (_TEXT, "none, sym or row"),
    "backend": (_TEXT, "auto, torch, faiss or faiss-hnsw"),
    "cold_start": ((int, float), "a fraction, e.g. 0.2"),
    "cold_protocol": (_TEXT, "papers or hidden"),
    "seed": (_COUNT, "a whole number, e.g. 0"),
    "out": (_TEXT, "a folder path"),
    "data": (_TEXT, "a dataset directory path"),
    "source": ((dict,), "a mapping with format and path"),
}


def read_recipe(path: Path) -> tuple[dict[str, Any], Path]:
    """The recipe's values and the folder its relative paths start from."""
    import yaml

    if not path.is_file():
        raise ConfigError(f"recipe {path} not found: see graphs/README.md for the recipes")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"recipe {path} is not a text file (not UTF-8): pass a YAML recipe such as graphs/lfm2k.yaml") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"recipe {path} is not valid YAML ({' '.join(str(e).split())})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"recipe {path} must be a mapping of keys to values")
    unknown = set(values) - RECIPE_KEYS
    if unknown:
        raise ConfigError(f"recipe {path}: unknown key(s) {', '.join(sorted(unknown))}: valid are {', '.join(sorted(RECIPE_KEYS))}")
    for key, value in values.items():
        types, want = RECIPE_TYPES[key]
        ok = isinstance(value, types) and (bool in types or not isinstance(value, bool))
        if ok and isinstance(value, list):
            ok = all(isinstance(v, str) for v in value)
        if not ok:
            raise ConfigError(f"recipe {path}: {key}: {value!r} must be {want}")
    return values, path.parent


@user_errors
def build_graph(
    ctx: typer.Context,
    data: Optional[Path] = typer.Option(None, help="Dataset directory (from `graphrec prepare`)."),
    recipe: Optional[Path] = typer.Option(None, help="A recipe YAML (graphs/*.yaml); options given here override it."),
    kind: Optional[str] = typer.Option(None, help="knn, cooccur, both, or user-cooccur (the user-user graph: users sharing training items) [both]."),
    modalities: Optional[str] = typer.Option(None, help="Modalities fused for kNN, e.g. image,text [all]."),
    k: Optional[int] = typer.Option(None, help="kNN neighbours per item [10]."),
    weighting: Optional[str] = typer.Option(None, help="kNN edge values: cosine or binary [cosine]."),
    symmetric: Optional[bool] = typer.Option(None, "--symmetric/--no-symmetric", help="Symmetrise the graphs [no]."),
    include_self: Optional[bool] = typer.Option(None, "--include-self/--no-include-self", help="Keep each item in its own kNN list (LATTICE parity) [no]."),
    cooccur_top_k: Optional[int] = typer.Option(None, help="Keep the top-k co-interaction counts per item [all]."),
    cooccur_min_count: Optional[int] = typer.Option(None, help="Drop pairs with fewer co-interactions [1]."),
    normalization: Optional[str] = typer.Option(None, help="Store normalised: none, sym, row [none]."),
    backend: Optional[str] = typer.Option(None, help="kNN search: auto, torch, faiss, faiss-hnsw [auto]."),
    cold_start: Optional[float] = typer.Option(None, help="Build from a cold-start split with this fraction of items cold [0]."),
    cold_protocol: Optional[str] = typer.Option(None, help="Cold-start protocol: papers (cold items only in valid/test) or hidden (their training interactions removed) [papers]."),
    seed: Optional[int] = typer.Option(None, help="Seed of the cold-start items [0]."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N (kNN search)."),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (default: torch's choice); recorded. A graph "
                                          "equals one built in a run bit for bit only at the same thread count."),
    out: Optional[Path] = typer.Option(None, help="Output folder [graphs/DATASET]; one subfolder per graph."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace graphs that exist."),
    quiet: Quiet = False,
    nproc: int = typer.Option(1, help="Build in N local processes on torch.distributed (each takes its kNN rows and "
                              "co-interaction item blocks; the graph is the one-process graph); torchrun -m graphrec "
                              "build-graph ... does the same across machines."),
) -> None:
    """Build and store item graphs: fused-feature kNN and/or training co-interactions.

    Example: graphrec build-graph --recipe graphs/scientific.yaml
    """
    from graphrec.cli.sources import resolve_source

    given = dict(
        kind=kind, modalities=modalities, k=k, weighting=weighting, symmetric=symmetric,
        include_self=include_self, cooccur_top_k=cooccur_top_k, cooccur_min_count=cooccur_min_count,
        normalization=normalization, backend=backend, cold_start=cold_start, cold_protocol=cold_protocol, seed=seed,
        out=out,
    )
    opts = dict(DEFAULTS)
    base = Path.cwd()
    source: dict[str, Any] | None = None
    in_recipe: set[str] = set()
    if recipe is not None:
        values, base = read_recipe(recipe)
        in_recipe = set(values)
        if "source" in values and "data" in values:
            raise ConfigError(f"{recipe}: names both data: and source:, two inputs: keep one of them")
        if "source" in values:
            source = resolve_source(values.pop("source"), base)
        if "data" in values:
            source = {"data": str((base / str(values.pop("data"))).resolve())}
        if values.get("out") is not None:
            values["out"] = base / str(values["out"])
        opts.update(values)
    opts.update({key: v for key, v in given.items() if v is not None})
    if data is not None:
        source = {"data": str(data.resolve())}
    if source is None:
        raise ConfigError("no data: pass --data DIR or --recipe graphs/NAME.yaml")
    if opts["kind"] not in ("knn", "cooccur", "both", "user-cooccur"):
        raise ConfigError(f"--kind {opts['kind']!r} is not one of knn, cooccur, both, user-cooccur")
    from graphrec import distributed  # torch: imported when a graph is built, not when the CLI starts

    dev = resolve_device(device)
    set_threads(threads)
    distributed.check_nproc(nproc)
    kinds = ["knn", "cooccur"] if opts["kind"] == "both" else [opts["kind"]]
    # an option that acts on nothing built is refused when typed, noted when the recipe sets
    # it (a recipe serves several kinds: --recipe R --kind cooccur leaves its kNN options unused)
    typed = {key for key, v in given.items() if v is not None}
    notes = []
    for keys, why, fix in _unused(opts, kinds, kind_typed=kind is not None):
        flags = [_flag(key, given[key]) for key in keys if key in typed]
        if flags:
            raise ConfigError(f"{', '.join(flags)} {'acts' if len(flags) == 1 else 'act'} {why}: "
                              f"drop {'it' if len(flags) == 1 else 'them'}, or {fix}")
        noted = [key for key in keys if key in in_recipe]
        if noted:
            notes.append(f"note: recipe {recipe}: {', '.join(noted)} {'acts' if len(noted) == 1 else 'act'} {why}: not used")
    if "knn" not in kinds:  # co-interaction graphs are sparse products in scipy, on the CPU
        ignored = [f for f, on in ((f"--device {device}", device != "auto"), (f"--threads {threads}", threads is not None)) if on]
        if ignored:
            notes.append(f"note: {' and '.join(ignored)} {'has' if len(ignored) == 1 else 'have'} no effect on "
                         "co-interaction graphs (scipy on the CPU, one thread): they act on the kNN search only")
    # the option values (k, weighting, ..., the cold-start split) are checked before any data is read
    recipe_only = frozenset(in_recipe - typed)
    _specs(opts, kinds, recipe, recipe_only)
    if opts["cold_start"]:
        from graphrec.train.run import check_cold_start

        check_cold_start(float(opts["cold_start"]), str(opts["cold_protocol"]))
    from graphrec.graphs.store import RECORD_FILE

    def check_outputs(out_dir: Path) -> None:
        for kd in kinds:
            check_output(out_dir / kd, overwrite, option="--out", marker=RECORD_FILE, what="graph directory")

    if opts["out"] is not None:  # refuse before any work is done
        # inside the dataset folder, graphs would be deleted when the dataset is replaced
        check_apart(Path(opts["out"]), "--out", folders={"--data": source.get("data")})
        if (Path(opts["out"]) / RECORD_FILE).is_file():  # OUT/KIND would nest a graph inside a graph
            raise ConfigError(f"--out {opts['out']} is a stored graph (it holds {RECORD_FILE}): build-graph writes "
                              f"OUT/KIND, so pass the folder that is to hold the graph folders (e.g. "
                              f"{Path(opts['out']).parent})")
        check_outputs(Path(opts["out"]))
    else:  # graphs/DATASET: the name is known once the data is read
        check_output_folder(Path("graphs"), "--out")
    shown = command_progress(quiet)  # its environment variable is checked before any rank starts
    if distributed.starts_ranks(nproc):
        _check_before_ranks(source, opts, kinds, check_outputs)
        raise typer.Exit(distributed.launch(ctx.meta.get(ARGV) or [], nproc, threads))  # OpenMP too (faiss)
    from graphrec.train.state import sigterm_as_interrupt

    shard = distributed.init_from_env(dev)
    if shard is not None and dev.startswith("cuda"):
        dev = f"cuda:{shard.local_rank}"
    main = shard is None or shard.is_main
    echo = typer.echo if main else (lambda *a, **k: None)
    try:
        for line in notes:  # once, by the main rank
            if main:
                typer.secho(line, err=True, fg=typer.colors.YELLOW)
        # a rank of --nproc takes the launcher's forwarded Ctrl-C (SIGTERM) as one process takes
        # Ctrl-C: its temporary files removed, "interrupted" (it was killed without a word)
        with sigterm_as_interrupt():
            _build(source=source, opts=opts, kinds=kinds, dev=dev, recipe=recipe, overwrite=overwrite,
                   progress=shown, shard=shard, echo=echo, check_outputs=check_outputs)
    except BaseException:
        if shard is not None:
            distributed.leave()
        raise
    if shard is not None:
        distributed.leave(wait=True)  # every rank done: leave together (see distributed.leave)


def _check_before_ranks(source: dict[str, Any], opts: dict[str, Any], kinds: list[str],
                        check_outputs: Callable[[Path], None]) -> None:
    """What every rank would refuse, checked once before the ranks start (one line, not a
    failure per rank, and no wait for them): a dataset directory that cannot be read, a
    kind its data cannot give (kNN without item features, unknown modalities) and, with
    no --out, the default output graphs/DATASET. Cheap: the dataset's header and its
    feature arrays' shapes are read, not the data (an importer's ``source:`` is imported
    by the ranks; only a path that does not exist is refused here)."""
    import json

    import numpy as np

    from graphrec.data import Dataset
    from graphrec.data.dataset import check_modality_name
    from graphrec.errors import ARRAY_FILE_ERRORS, DataError
    from graphrec.graphs.build import check_graph_inputs

    from graphrec.cli.sources import load_source

    if "data" not in source:
        if not Path(source["path"]).exists():
            load_source(source)  # the importer's one-line error for a missing path
        return
    path = Path(source["data"])
    try:
        header = json.loads((path / "dataset.json").read_text(encoding="utf-8"))
        name, modalities = header["name"], header["modalities"]
        if not isinstance(name, str) or not isinstance(modalities, dict):
            raise TypeError(name)
        for m in modalities:  # names become paths: none may leave the directory
            check_modality_name(m, str(path / "dataset.json"))
        features = {m: np.load(path / "features" / f"{m}.npy", mmap_mode="r", allow_pickle=False) for m in modalities}
    except (*ARRAY_FILE_ERRORS, TypeError, DataError):
        Dataset.load(path)  # not readable: Dataset.load's one line (it stops at what is wrong)
        return
    sources = (header.get("meta") or {}).get("features") if isinstance(header.get("meta"), dict) else None
    for spec in _specs(opts, kinds).values():
        check_graph_inputs(spec, name, features, sources if isinstance(sources, dict) else None)
    if opts["out"] is None:
        check_outputs(Path("graphs") / name)


def _flag(key: str, value: Any = None) -> str:
    """The command-line option of a recipe key (``cooccur_top_k``: ``--cooccur-top-k``;
    ``include_self`` False: ``--no-include-self``)."""
    return ("--no-" if value is False else "--") + key.replace("_", "-")


def _unused(opts: dict[str, Any], kinds: list[str], kind_typed: bool) -> list[tuple[tuple[str, ...], str, str]]:
    """The groups of options that act on nothing this call builds: (keys, why, the fix)."""
    kind = f"--kind {opts['kind']}" if kind_typed else f"the recipe's kind: {opts['kind']}"
    groups = []
    if "knn" not in kinds:
        groups.append((KNN_OPTIONS, f"on kNN graphs only, and {kind} builds none", "build --kind knn or --kind both"))
    if not {"cooccur", "user-cooccur"} & set(kinds):
        groups.append((COOCCUR_OPTIONS, f"on co-interaction graphs (cooccur, user-cooccur) only, and {kind} builds none",
                       "build --kind cooccur, user-cooccur or both"))
    if not opts["cold_start"]:
        groups.append((COLD_OPTIONS, "on a cold-start split only, and no cold start is asked for",
                       "pass --cold-start FRACTION (e.g. 0.2)"))
    return groups


def _specs(opts: dict[str, Any], kinds: list[str], recipe: Optional[Path] = None,
           in_recipe: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The GraphSpec of each kind from the options. A bad value is a one-line ConfigError
    naming where it was set: its option (``--k must be ...``), or the recipe's key
    (``recipe R: k must be ...``) for a value that only the recipe gave (``in_recipe``)."""
    from graphrec.graphs.build import GraphSpec, parse_modalities

    try:
        return {
            kd: GraphSpec(
                kind=kd,
                k=int(opts["k"]),
                modalities=parse_modalities(opts["modalities"]),
                weighting=opts["weighting"],
                symmetric=bool(opts["symmetric"]),
                include_self=bool(opts["include_self"]),
                cooccur_top_k=opts["cooccur_top_k"],
                cooccur_min_count=int(opts["cooccur_min_count"]),
                normalization=opts["normalization"],
                backend=opts["backend"],
            )
            for kd in kinds
        }
    except ConfigError as e:  # GraphSpec's messages start with the field they refuse
        key, _, rest = str(e).partition(" ")
        if key not in DEFAULTS:
            raise
        if key in in_recipe:
            raise ConfigError(f"recipe {recipe}: {key} {rest.replace('(None:', '(null:')}") from None
        raise ConfigError(f"{_flag(key)} {rest.replace('(None: keep all)', '(leave it out to keep all)')}") from None


def _build(*, source: dict[str, Any], opts: dict[str, Any], kinds: list[str], dev: str, recipe: Optional[Path],
           overwrite: bool, progress: bool, shard: Any, echo: Any, check_outputs: Any) -> None:
    """Read the data, build each graph (every rank its share), store it (rank 0) and report."""
    from graphrec.data import cold_start as make_cold
    from graphrec.graphs.build import build_item_graph
    from graphrec.graphs.stats import coconsumption_rate, degree_stats, overlap, random_pair_overlap
    from graphrec.graphs.store import save_graph

    from graphrec.cli.sources import load_source

    main = shard is None or shard.is_main
    t_load = time.perf_counter()
    ds = load_source(source)
    if opts["cold_start"]:
        ds = make_cold(ds, float(opts["cold_start"]), int(opts["seed"]), str(opts["cold_protocol"]))
    echo(f"{ds.name}: {ds.n_users} users, {ds.n_items} items, {ds.train.nnz} training interactions "
               f"(loaded in {time.perf_counter() - t_load:.2f} s)"
               + (f", {len(ds.cold_items)} cold items" if ds.cold_items is not None else ""))
    # torchrun starts each rank with its own command line: ranks that disagree would build
    # their rows of different graphs into one (or wait for each other forever)
    if shard is not None:  # (the fingerprint of an imported source costs a hash of its features)
        from graphrec import distributed

        distributed.check_same_everywhere(
            {"graph options": {k: v for k, v in opts.items() if k != "out"}, "kinds": kinds,
             "data": ds.fingerprint(), "--out": None if opts["out"] is None else str(opts["out"])},
            "start every rank with the same command line on the same data",
        )
    out_dir = Path(opts["out"]) if opts["out"] is not None else Path("graphs") / ds.name
    if opts["out"] is None:
        check_outputs(out_dir)  # before the first graph is built
    built = {}
    for kd, spec in _specs(opts, kinds).items():  # checked by build_graph
        res = build_item_graph(ds, spec, device=dev, progress=main and progress, shard=shard)
        res.record.options["source"] = source
        if recipe is not None:  # a stale graph's rebuild command starts from it
            res.record.options["recipe"] = str(recipe.resolve())
        built[kd] = res
    # stored once every kind is built: an interrupt or a failure while the second builds
    # (--kind both) leaves no half result, which the same command would then refuse
    for kd, res in built.items():
        if not main:
            continue
        record = save_graph(out_dir / kd, res.graph, res.record, overwrite=overwrite)
        st = degree_stats(res.graph)
        for note in res.notes:
            echo(f"  {note}")
        echo(
            f"{kd}: {st['nodes']} nodes, {st['edges']} edges, out-degree min/median/max "
            f"{st['degree_min']}/{st['degree_median']:.0f}/{st['degree_max']}, "
            f"{st['isolated']} isolated {res.record.nodes}, built in {res.seconds:.2f} s -> {out_dir / kd} (nnz {record.nnz})"
        )
    if "knn" in built and "cooccur" in built and main:
        knn_g, co_g = built["knn"].graph, built["cooccur"].graph
        if knn_g.nnz == 0:  # the shares of an empty edge set are undefined (NaN): say why instead
            echo("kNN edges that are co-interaction edges: none (the kNN graph has no edges: too few items have content)")
        else:
            echo(
                f"kNN edges that are co-interaction edges: {overlap(knn_g, co_g):.4f} "
                f"(random item pairs: {random_pair_overlap(co_g, 200_000, seed=0):.4f}); "
                f"kNN edges co-consumed by a training user: {coconsumption_rate(knn_g, ds.train):.4f}"
            )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ranks = "" if shard is None else f", rank 0 of {shard.world} processes"
    echo(f"peak memory (process RSS{ranks}): {peak_mb:.0f} MB")
