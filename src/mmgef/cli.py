"""The ``mmgef`` command line (Typer).

Every input problem ends as a one-line error on stderr and exit code 2; an unexpected exception
(a bug) as one line and exit code 1. ``mmgef --debug COMMAND`` shows the Python traceback instead.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from mmgef.errors import MMGEFError
from mmgef.params import MODEL_PARAMS

MODEL_HELP = "one of " + ", ".join(MODEL_PARAMS) + ", or a preset such as mmgef+ (`mmgef models` describes them)"
ENCODING_HELP = "text encoding of the data files (e.g. latin-1, cp1252)"

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Multimodal recommendation: MM-GEF, LATTICE and baselines.")
data_app = typer.Typer(no_args_is_help=True, help="Inspect and check datasets.")
app.add_typer(data_app, name="data")

F = TypeVar("F", bound=Callable[..., Any])


@app.callback()
def _options(ctx: typer.Context, debug: bool = typer.Option(False, "--debug", help="show Python tracebacks")) -> None:
    ctx.obj = {"debug": debug}


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def one_line_errors(fn: F) -> F:
    """Turn what a command raises into one line: input problems exit 2, bugs exit 1 (``--debug``: the traceback).

    The wrapper takes the Typer context as an extra keyword (``_ctx``) to read ``--debug`` from it.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, _ctx: typer.Context, **kwargs: Any) -> Any:
        debug = bool((_ctx.find_root().obj or {}).get("debug"))
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except MMGEFError as err:
            if debug:
                raise
            _fail(str(err))
        except OSError as err:  # disk full, permission denied, a path that is a directory …
            if debug:
                raise
            where = f"{err.filename}: " if err.filename else ""
            _fail(f"{where}{err.strerror or err}. Fix: check the path, its permissions and the free disk space.")
        except Exception as err:  # noqa: BLE001 - a bug: one line, and the way to the traceback
            if debug:
                raise
            first = (str(err).splitlines() or [""])[0][:200]
            _fail(f"internal error ({type(err).__name__}: {first}); this is a bug in mmgef. "
                  "Re-run with `mmgef --debug ...` for the traceback and report it.", code=1)

    sig = inspect.signature(fn, eval_str=True)
    ctx_param = inspect.Parameter("_ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
    wrapper.__signature__ = sig.replace(parameters=[*sig.parameters.values(), ctx_param])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {**typing.get_type_hints(fn), "_ctx": typer.Context}
    del wrapper.__wrapped__  # Typer reads the signature above, not the wrapped function's
    return wrapper  # type: ignore[return-value]


def command(typer_app: typer.Typer, *args: Any, **kwargs: Any) -> Callable[[F], F]:
    """``typer_app.command(...)`` whose errors are one line."""
    return lambda fn: typer_app.command(*args, **kwargs)(one_line_errors(fn))


def _setup(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@command(app)
def train(
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML run config (model, data, train, params)"),
    model: str | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    data: str | None = typer.Option(None, "--data", "-d", help="dataset config name (configs/datasets) or a directory"),
    split: str | None = typer.Option(None, "--split", help="auto, given, random, temporal or cold"),
    seed: int | None = typer.Option(None, "--seed"),
    out: Path | None = typer.Option(None, "--out", "-o", help="run directory (default runs/<data>-<model>-seed<N>-<hash>)"),
    sets: list[str] = typer.Option([], "--set", help="override, e.g. --set lr=0.001 --set n_layers=3"),
    resume: bool = typer.Option(False, "--resume", help="continue a killed run in --out"),
    init: Path | None = typer.Option(None, "--init", help="RUN_DIR/pretrained.safetensors from `mmgef pretrain`"),
    sampler: str | None = typer.Option(None, "--sampler", help="uniform or mixgcf (hard negatives for graph models)"),
    encoding: str | None = typer.Option(None, "--encoding", help=ENCODING_HELP),
    workers: int | None = typer.Option(None, "--workers", help="data-parallel worker processes (torch.distributed); "
                                                               "each step takes WORKERS × batch_size pairs"),
    ray_address: str | None = typer.Option(None, "--ray-address", help="run the workers as a Ray Train job: 'local' or a "
                                                                       "cluster address (the run directory must be shared)"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Train one model and write its run directory (config, history, weights, results)."""
    _run(config, model, data, split, seed, out, [*sets, *([f"train.workers={workers}"] if workers else [])], resume, init,
         sampler, encoding, verbose, ray_address)


@command(app)
def pretrain(
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML run config (model mcpt)"),
    data: str | None = typer.Option(None, "--data", "-d", help="dataset config name (configs/datasets) or a directory"),
    split: str | None = typer.Option(None, "--split", help="auto, given, random, temporal or cold"),
    seed: int | None = typer.Option(None, "--seed"),
    out: Path | None = typer.Option(None, "--out", "-o", help="run directory (default runs/<data>-mcpt-seed<N>-<hash>)"),
    sets: list[str] = typer.Option([], "--set", help="override, e.g. --set cima_weight=0.4 --set use_graphs=false"),
    resume: bool = typer.Option(False, "--resume", help="continue a killed run in --out"),
    encoding: str | None = typer.Option(None, "--encoding", help=ENCODING_HELP),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Multimodal contrastive pre-training: writes RUN_DIR/pretrained.safetensors for `train --init`."""
    _run(config, None if config else "mcpt", data, split, seed, out, sets, resume, None, None, encoding, verbose)


def _run(config: Path | None, model: str | None, data: str | None, split: str | None, seed: int | None,
         out: Path | None, sets: list[str], resume: bool, init: Path | None, sampler: str | None, encoding: str | None,
         verbose: bool, ray_address: str | None = None) -> None:
    """`train` and `pretrain`: resolve the config, train, print the results (and the pre-trained file)."""
    _setup(verbose)
    from mmgef import runs
    from mmgef.config import resolve_run_config
    from mmgef.report import results_table
    from mmgef.training.pretrained import PRETRAINED

    extra = ([f"train.init={init.resolve()}"] if init else []) + ([f"train.sampler={sampler}"] if sampler else []) \
        + ([f"data.encoding={encoding}"] if encoding else [])
    cfg = resolve_run_config(config, model, data, split, seed, [*sets, *extra])
    if data is None and cfg.data.name == "synthetic":
        typer.secho("note: no --data given: training on the built-in SYNTHETIC data (pass --data NAME_OR_DIR for yours)",
                    err=True)
    results = runs.train(cfg, out, resume=resume, ray_address=ray_address)
    typer.echo(results_table([results]))
    typer.echo(f"run directory: {results['run_dir']}")
    if (Path(results["run_dir"]) / PRETRAINED).exists():
        typer.echo(f"pre-trained embeddings: {Path(results['run_dir']) / PRETRAINED} (use with `mmgef train --init`)")


@command(app)
def models(name: str | None = typer.Argument(None, help="a model or preset name: print its keys")) -> None:
    """List every model and preset, or one's hyper-parameters with type, default and description."""
    from mmgef.params import describe, params_class
    from mmgef.presets import load_preset, preset_names
    from mmgef.report import markdown_table

    if name is None:
        typer.echo(markdown_table(["model", "content", "MixGCF", "what it is"],
                                  [[n, "yes" if c.uses_content else "no", "yes" if c.layered else "no", c.description]
                                   for n, c in MODEL_PARAMS.items()]))
        typer.echo("\n" + markdown_table(["preset", "model", "what it is"],
                                          [[n, load_preset(n).model, load_preset(n).description] for n in preset_names()]))
        return
    preset = load_preset(name) if name not in MODEL_PARAMS else None
    cls = params_class(preset.model if preset else name)
    rows = describe(cls)
    if preset:
        typer.echo(f"{name}: preset of {preset.model} — {preset.description}\n{preset.chosen}\n")
        typer.echo(markdown_table(["key", "preset value", f"{preset.model} default"],
                                  [[k, repr(v), repr(cls.model_fields[k].default)] for k, v in preset.params.items()]) + "\n"
                   if preset.params else f"every value is {preset.model}'s default\n")
        if preset.alternatives:
            typer.echo("alternatives, searched on validation like lr by an experiment row with `alternatives: preset` "
                       "(configs/experiments/mmgef_plus_parts.yaml):\n"
                       + markdown_table(["alternative", "settings over the preset's"],
                                        [[alt, json.dumps(bundle) if bundle else "(the preset as it is)"]
                                         for alt, bundle in preset.alternatives.items()]) + "\n")
        rows = [(k, t, repr(preset.params[k]) if k in preset.params else d, desc) for k, t, d, desc in rows]
    else:
        typer.echo(f"{name}: {cls.description}\n")
    typer.echo(markdown_table(["key", "type", "default", "description"], rows))
    typer.echo(f"\nset any of them with `mmgef train --model {name} --set KEY=VALUE`")


@command(app)
def evaluate(
    run_dir: Path = typer.Argument(..., help="a directory written by `mmgef train`"),
    as_json: bool = typer.Option(False, "--json", help='print {"valid": {...}, "test": {...}}'),
) -> None:
    """Re-evaluate a finished run's best weights on validation and test (equals its results.json)."""
    _setup()
    from mmgef import runs
    from mmgef.report import markdown_table

    metrics = runs.evaluate(run_dir)
    if as_json:
        typer.echo(json.dumps(metrics, indent=2))
        return
    keys = list(metrics["test"])
    typer.echo(markdown_table(["split", *keys], [[part, *(metrics[part][k] for k in keys)] for part in ("valid", "test")]))


@command(app, "inspect")
def inspect_run(
    run_dir: Path = typer.Argument(..., help="a directory written by `mmgef train`"),
    as_json: bool = typer.Option(False, "--json", help='print {"<weight>": value, ...}'),
) -> None:
    """A finished run's learned mixing weights: the attention over its item graphs, modality weights, gates."""
    _setup()
    from mmgef import runs
    from mmgef.report import markdown_table

    loaded = runs.load_run(run_dir)
    weights = loaded.model.mixing_weights()
    if as_json:
        typer.echo(json.dumps(weights, indent=2))
    elif not weights:
        typer.echo(f"{run_dir}: this model ({loaded.cfg.model}) learns no mixing weights.")
    else:
        typer.echo(markdown_table(["weight", "value"], [[k, v] for k, v in weights.items()]))


@command(app)
def recommend(
    run_dir: Path = typer.Argument(..., help="a directory written by `mmgef train`"),
    user: list[str] = typer.Option([], "--user", "-u", help="raw user id as in the data files (repeatable)"),
    users_file: Path | None = typer.Option(None, "--users-file", help="a text file with one raw user id per line"),
    k: int = typer.Option(20, "--k", "-k"),
    include_seen: bool = typer.Option(False, "--include-seen", help="keep items the user already has in the data"),
    as_json: bool = typer.Option(False, "--json", help='print {"<user>": [{"item": id, "score": s}, ...]}'),
) -> None:
    """Top-K unseen items for users (raw ids in and out); the model loads once for all of them."""
    _setup()
    import mmgef

    users = list(user)
    if users_file is not None:
        if not users_file.is_file():
            raise MMGEFError(f"--users-file {users_file}: not found. Fix: pass a text file with one user id per line.")
        users += [line.strip() for line in users_file.read_text().splitlines() if line.strip()]
    if not users:
        raise MMGEFError("no user given. Fix: pass --user ID (repeatable) or --users-file FILE.")
    if k <= 0:
        raise MMGEFError(f"--k {k}: must be a positive integer. Fix: e.g. --k 20.")
    ranked = mmgef.load(run_dir).recommend_many(users, k, exclude_seen=not include_seen)
    if as_json:
        typer.echo(json.dumps({u: [{"item": i, "score": s} for i, s in r] for u, r in zip(users, ranked)}, indent=2))
        return
    for u, r in zip(users, ranked):
        for rank, (item, score) in enumerate(r, 1):
            typer.echo(f"{u}\t{rank}\t{item}\t{score:.4f}" if len(users) > 1 else f"{rank}\t{item}\t{score:.4f}")


@command(app)
def export(
    run_dir: Path = typer.Argument(..., help="a directory written by `mmgef train`"),
    out: Path = typer.Option(..., "--out", "-o", help="directory for embeddings.safetensors, user_ids.txt, item_ids.txt"),
) -> None:
    """Export a run's final user and item vectors with their raw ids (for serving or an ANN index)."""
    _setup()
    import mmgef

    path = mmgef.load(run_dir).export(out)
    typer.echo(f"exported to {path}")


@command(data_app, "stats")
def data_stats(path: str = typer.Argument(..., help="dataset config name or directory"),
               split: str = typer.Option("auto", "--split"), seed: int = typer.Option(0, "--seed"),
               encoding: str = typer.Option("utf-8", "--encoding", help=ENCODING_HELP)) -> None:
    """Users, items, interactions, density, split sizes, feature shapes, and how popular in training the items
    of each part's pairs are (held-out parts leaning to rarer items than training: a popularity shift)."""
    _setup()
    from mmgef.data.registry import load_dataset
    from mmgef.data.split import make_split

    ds = load_dataset(path, modalities=None, encoding=encoding)
    stats = ds.stats()
    parts = make_split(ds, split, seed)
    stats["split"] = {"kind": split, **parts.counts()}
    stats["item_training_degree"] = parts.item_degree_by_part()
    typer.echo(json.dumps(stats, indent=2))


@command(data_app, "validate")
def data_validate(path: str = typer.Argument(..., help="dataset config name or directory"),
                  encoding: str = typer.Option("utf-8", "--encoding", help=ENCODING_HELP)) -> None:
    """Read every file of a dataset with full checks; exit 0 when it is usable."""
    _setup()
    from mmgef.data.registry import load_dataset, resolve_spec
    from mmgef.data.split import make_split

    spec = resolve_spec(path)
    ds = load_dataset(path, modalities=list(spec.features) or None, encoding=encoding)
    make_split(ds, "auto", 0)
    typer.echo(f"ok: {ds.name}: {ds.n_users} users, {ds.n_items} items, {ds.n_interactions} interactions, "
               f"features {', '.join(f'{m} {x.shape[1]}-d' for m, x in ds.content.items()) or 'none'}")


@command(data_app, "synth")
def data_synth(out: Path = typer.Argument(..., help="directory to write"), seed: int = typer.Option(0, "--seed"),
               users: int = typer.Option(2000, "--users"), items: int = typer.Option(1500, "--items")) -> None:
    """Write the built-in synthetic dataset in the native layout (CSV + features/*.npy)."""
    from mmgef.data.formats import write_native
    from mmgef.data.synthetic import SyntheticConfig, generate
    from mmgef.schema import validate

    cfg = validate(SyntheticConfig, {"n_users": users, "n_items": items, "seed": seed}, "mmgef data synth",
                   fix="pass --users > 10, --items > 20 (at most 10,000,000 each) and --seed >= 0")
    if out.exists() and not out.is_dir():
        raise MMGEFError(f"{out}: is a file. Fix: pass a new directory to write the dataset into.")
    if out.is_dir() and any(out.iterdir()):
        raise MMGEFError(f"{out}: is not empty; writing would mix the synthetic files with what is there. "
                         "Fix: pass a new or empty directory.")
    write_native(generate(cfg), out)
    typer.echo(f"wrote synthetic data (seed {seed}) to {out}")


@command(app)
def features(
    items: Path = typer.Option(..., "--items", help="items.csv with item_id, text columns and an image path column"),
    out: Path = typer.Option(..., "--out", help="output folder (e.g. DATA/features)"),
    encoder: str = typer.Option("text", "--encoder", help="text (sentence-transformers) or clip (image + text)"),
    model_path: Path | None = typer.Option(None, "--model-path", help="local model directory (text default: offline MiniLM)"),
    id_col: str = typer.Option("item_id", "--id-col", help="id column; user_id with a reviews CSV writes user review vectors"),
    text_cols: str = typer.Option("title,text,description", "--text-cols", help="comma-separated columns joined as the text"),
    image_col: str = typer.Option("image", "--image-col", help="column with image paths relative to the CSV"),
    batch_size: int = typer.Option(64, "--batch-size"),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda"),
    on_missing: str = typer.Option("error", "--on-missing", help="error, zero or skip for missing/corrupt images and empty texts"),
    dtype: str = typer.Option("float32", "--dtype", help="float32 or float16"),
    ray: str | None = typer.Option(None, "--ray", help="encode on Ray Data actors: 'local' or a cluster address"),
    ray_actors: int = typer.Option(2, "--ray-actors", help="encoder actors in the Ray pool"),
    encoding: str = typer.Option("utf-8", "--encoding", help="text encoding of the items CSV (e.g. latin-1)"),
    repeated_ids: str | None = typer.Option(None, "--repeated-ids", help="rows sharing an id: error or mean (default: "
                                                                         "mean for user_id, one row per review)"),
) -> None:
    """Encode item texts and images into DIR/<modality>.npy (cached by content hash, resumable)."""
    _setup()
    from mmgef.features.encoders import ENCODER_MODALITIES, load_encoder
    from mmgef.features.extract import ExtractConfig, extract, plan_items
    from mmgef.schema import validate

    cfg = validate(ExtractConfig, {"items": items, "out": out, "id_col": id_col, "encoder": encoder, "model_path": model_path,
                                   "text_cols": [c.strip() for c in text_cols.split(",") if c.strip()],
                                   "image_col": image_col, "batch_size": batch_size, "device": device,
                                   "on_missing": on_missing, "dtype": dtype, "ray_address": ray,
                                   "ray_actors": ray_actors, "encoding": encoding, "repeated_ids": repeated_ids},
                   "mmgef features",
                   fix="correct the option (see `mmgef features --help`)")
    plan = plan_items(cfg, ENCODER_MODALITIES[cfg.encoder])  # bad items fail before the encoder loads (seconds)
    manifest = extract(cfg, load_encoder(cfg.encoder, cfg.model_path, cfg.device), plan)
    for m, info in manifest["modalities"].items():
        typer.echo(f"{m}: {manifest['rows']} × {info['dim']} ({info.get('encoded', 0)} encoded, {info.get('cache_hits', 0)} from cache)")
    affected = sum(len(v) for v in manifest["affected_items"].values())
    if affected:
        typer.echo(f"{affected} item/modality problems handled by --on-missing {on_missing}: see {out}/manifest.json")


@command(app)
def serve(
    run_dir: Path = typer.Argument(..., help="a directory written by `mmgef train`"),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    workers: int = typer.Option(1, "--workers", help="uvicorn worker processes (each loads the run; they share the store)"),
    db: Path | None = typer.Option(None, "--db", help="SQLite file for added items and interactions (default RUN_DIR/service.sqlite)"),
    faiss_above: int = typer.Option(50_000, "--faiss-above", help="catalogue size above which top-k uses a FAISS index"),
    ray: str | None = typer.Option(None, "--ray", help="serve as a Ray Serve deployment on the Ray cluster at this "
                                                       "address ('local' starts Ray here); --workers is then the replicas"),
) -> None:
    """Serve recommendations over HTTP: JSON endpoints, OpenAPI docs at /docs, a web page at /."""
    _setup()
    import os

    import uvicorn

    if not (run_dir / "config.yaml").is_file():
        raise MMGEFError(f"{run_dir}: not a finished run (no config.yaml). Fix: pass a directory `mmgef train` wrote.")
    if ray:
        from mmgef.serve.ray_app import serve_forever

        typer.echo(f"serving {run_dir} on Ray ({ray}) at http://{host}:{port} with {workers} replica(s); Ctrl-C stops")
        serve_forever(run_dir=run_dir, address=ray, host=host, port=port, replicas=workers, db=db, faiss_above=faiss_above)
        return
    os.environ.update(MMGEF_RUN_DIR=str(run_dir), MMGEF_DB=str(db or ""), MMGEF_FAISS_ABOVE=str(faiss_above))
    uvicorn.run("mmgef.serve.app:app_from_env", factory=True, host=host, port=port, workers=workers, log_level="warning")


@command(app)
def reproduce(
    spec_file: Path = typer.Argument(..., help="configs/experiments/<name>.yaml"),
    datasets: list[str] | None = typer.Option(None, "--datasets", help="subset of the spec's datasets"),
    seeds: int | None = typer.Option(None, "--seeds", help="seeds of the chosen settings (default: the spec's)"),
    workers: int = typer.Option(2, "--workers", help="parallel local worker processes (one thread each)"),
    ray_address: str | None = typer.Option(None, "--ray-address", help="run on Ray Tune: 'local' or a cluster address"),
    out: Path | None = typer.Option(None, "--out", help="experiment directory (default runs/experiments/<name>)"),
    reuse: list[Path] = typer.Option([], "--reuse", help="other directories whose finished runs may be reused; where several "
                                                         "hold one config, the experiment's own folder wins, then the first listed"),
    dry_run: bool = typer.Option(False, "--dry-run", help="train nothing: list each row's runs finished and still to do, "
                                                          "with a time estimate from the finished ones"),
) -> None:
    """Re-test a paper table: grid on validation, chosen settings × seeds, report with tables, claims and plots."""
    _setup()
    import time

    from mmgef.experiments.report import plan_table, provenance, write_report
    from mmgef.experiments.runner import Runner
    from mmgef.experiments.spec import load_spec

    spec = load_spec(spec_file)
    ds = datasets or spec.datasets
    unknown = [d for d in ds if d not in spec.datasets]
    if unknown:
        raise MMGEFError(f"--datasets {unknown}: not in {spec_file} ({spec.datasets}). Fix: pick from those.")
    t0, made_by = time.time(), provenance()  # the code the runs start from, not whatever is checked out at the end
    runner = Runner(spec, out or Path("runs/experiments") / spec.name, workers, ray_address, reuse)
    if dry_run:
        typer.echo(plan_table(runner.preview(ds, seeds), workers))
        return
    cells = runner.run(ds, seeds)
    report = write_report(runner, cells, ds, time.time() - t0, made_by)
    typer.echo((report / "summary.md").read_text())
    typer.echo(f"report in {report}")


DEMO_MODELS = ("cb", "mf", "vbpr", "lightgcn", "freedom", "lattice", "mmgef")
DEMO_SLOW = ("mmgcn", "grcn")  # 10 s and 31 s of the demo's 90 s on 2 cores


@command(app)
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="where the demo's runs and table go"),
    epochs: int = typer.Option(60, "--epochs", help="maximum epochs per model (early stopping applies)"),
    lr: float = typer.Option(0.005, "--lr", help="Adam learning rate for every model"),
    all_models: bool = typer.Option(False, "--all", help=f"also the slow rivals ({', '.join(DEMO_SLOW)}: ~40 s more)"),
    pretrain: bool = typer.Option(False, "--pretrain", help="instead: pre-training → fine-tuning LightGCN (uniform / MixGCF)"),
) -> None:
    """The main job on the built-in synthetic data: train the models and print a comparison."""
    _setup()
    import time

    from mmgef import runs
    from mmgef.config import resolve_run_config
    from mmgef.io import write_text
    from mmgef.report import results_table
    from mmgef.training.pretrained import PRETRAINED

    common = [f"epochs={epochs}", f"lr={lr}", "patience=5", f"progress={sys.stderr.isatty()}"]  # bars only on a terminal
    pre = out / "mcpt" / PRETRAINED
    models = [*DEMO_MODELS, *(DEMO_SLOW if all_models else ())]
    jobs = ([("mcpt", "mcpt", []), ("lightgcn", "lightgcn", []), ("lightgcn", "lightgcn+mixgcf", ["sampler=mixgcf"]),
             ("lightgcn", "pretrained->lightgcn", [f"train.init={pre.resolve()}"]),
             ("lightgcn", "pretrained->lightgcn+mixgcf", [f"train.init={pre.resolve()}", "sampler=mixgcf"])]
            if pretrain else [(name, name, []) for name in models])
    results = []
    for n, (model, label, sets) in enumerate(jobs, 1):
        typer.echo(f"[{n}/{len(jobs)}] {label} on the built-in synthetic data …")
        cfg = resolve_run_config(model=model, data="synthetic", sets=[*common, *sets])
        run_dir = out / label.replace(">", "")
        t0 = time.perf_counter()
        res = runs.train(cfg, run_dir, resume=(run_dir / "checkpoint.safetensors").exists())
        results.append({**res, "model": label})
        typer.echo(f"      done in {time.perf_counter() - t0:.1f} s ({res.get('epochs', 0)} epochs): "
                   f"test recall@20 {res['test']['recall@20']:.4f}")
    table = results_table(results)
    write_text(out / "results.md", "# Demo on the built-in SYNTHETIC data (seeded)\n\n" + table + "\n")
    typer.echo("\nTest metrics on the built-in SYNTHETIC data (best-validation epoch):\n" + table)
    if not pretrain and not all_models:
        typer.echo(f"(the slow rivals {', '.join(DEMO_SLOW)} run with `mmgef demo --all`)")
    typer.echo(f"\nruns and table in {out}")


def main() -> None:
    """Console entry: first the allocator ``MMGEF_ALLOCATOR`` names (a re-run of this process), then the command."""
    from mmgef.training.allocator import exec_with_allocator

    try:
        exec_with_allocator()
    except MMGEFError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
