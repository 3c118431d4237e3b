"""A feed-forward neural network (MLP) for tables, trained with PyTorch, reproducibly.

Training is deterministic for a given seed on a given device: the seed drives weight initialisation, dropout and
the DataLoader's shuffling (a seeded generator), and torch's deterministic algorithms are switched on while the
node trains (warn-only on CUDA, where a few kernels have no deterministic version). The global random state and
the determinism switches are restored afterwards, so other code in the same worker is unaffected.

Preprocessing is part of the model (see nodes/automl/mlp_flavor.py): numbers are standardised, text is one-hot,
and the model is stored as JSON plus a numpy weights file, never as pickle.
"""
from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, field_validator

from engine.errors import NodeInputError
from engine.i18n import N_, tr
from engine.ports import Model, ModelRef, Report, ReportPort, Table
from engine.sdk import Context, Node, NodeSettings, node
from nodes.automl import mlp_flavor
from nodes.automl.flavors import feature_kinds
from nodes.automl.training import (TRANSFORM_INPUT, VALID_INPUT, feature_frame, labelled_rows, label_codes,
                                   problem_type_of, provenance, validation_metrics, validation_rows)
from nodes.automl.train import cuda_available
from nodes.plotting import figure

ProblemType = Literal["auto", "binary", "multiclass", "regression"]
Device = Literal["auto", "cpu", "cuda"]
_TRAINING = threading.Lock()  # see MLP.compute
_LAYERS = re.compile(r"^\s*(\d+\s*(,\s*\d+\s*)*)?$")


class MLPSettings(NodeSettings):
    label: str = Field(min_length=1, title=N_("Label column"), json_schema_extra={"widget": "column", "port": "train"})
    problem_type: ProblemType = Field("auto", title=N_("Problem type"), description=N_(
        "auto: two label values give binary; text or a few whole numbers give multiclass; other numbers regression"))
    hidden_layers: str = Field("128,64", title=N_("Hidden layers"), description=N_(
        "Units per hidden layer, comma-separated, e.g. 128,64; empty: no hidden layer (a linear model)"))
    dropout: float = Field(0.1, ge=0.0, lt=1.0, title=N_("Dropout"),
                           description=N_("Share of hidden units switched off at random in each training step"))
    epochs: int = Field(30, ge=1, le=10_000, title=N_("Epochs"), description=N_("Passes over the training rows"))
    batch_size: int = Field(256, ge=1, le=1_000_000, title=N_("Batch size"))
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0, title=N_("Learning rate"), description=N_("Adam step size"))
    weight_decay: float = Field(1e-4, ge=0.0, le=1.0, title=N_("Weight decay"),
                                description=N_("L2 penalty on the weights (AdamW)"))
    patience: int = Field(5, ge=1, le=10_000, title=N_("Early stopping patience"), description=N_(
        "With a validation table: stop after this many epochs without a lower validation loss and keep the best "
        "epoch's weights"))
    max_categories: int = Field(50, ge=1, le=10_000, title=N_("Most categories per text column"),
                                description=N_("The most frequent categories get an input each; others count as "
                                               "unseen (all zeros)"))
    min_category_rows: int = Field(5, ge=1, title=N_("Fewest rows per category"),
                                   description=N_("Rarer categories count as unseen, so the network cannot learn "
                                                  "single rows (such as identifiers) by heart"))
    exclude: list[str] = Field(default_factory=list, title=N_("Leave out columns"), description=N_(
        "Columns the model must not use (e.g. protected attributes). Dates and identifier-like text columns are "
        "always left out, with a note in the log"))
    seed: int | None = Field(None, title=N_("Seed"), description=N_("Empty uses the project seed"))
    device: Device = Field("auto", title=N_("Device"), description=N_(
        "auto: the worker's CUDA GPU when it has one, else the CPU; cuda fails on a worker without one"))

    @field_validator("hidden_layers")
    @classmethod
    def _layers(cls, value: str) -> str:
        if not _LAYERS.match(value) or any(int(v) < 1 or int(v) > 65_536 for v in re.findall(r"\d+", value)):
            raise ValueError(tr("write whole numbers from 1 to 65536 separated by commas, e.g. 128,64"))
        return value

    def layer_sizes(self) -> list[int]:
        return [int(v) for v in re.findall(r"\d+", self.hidden_layers)]


# ---- preparing the data -------------------------------------------------------------------------------------
def fit_encoding(frame: pl.DataFrame, settings: MLPSettings, ctx: Context) -> list[dict[str, Any]]:
    """The input encoding fitted on the training features; columns that cannot inform the network are left out
    with a warning (entirely missing, or text without a category of `min_category_rows` rows)."""
    kinds = feature_kinds(frame)  # dates were left out before (training.left_out)
    encoding: list[dict[str, Any]] = []
    for name, kind in kinds.items():
        col = frame[name]
        if col.null_count() == col.len():
            ctx.log.warning(tr("column {col!r} is empty in the training data; left out", col=name))
            continue
        if kind == "other":
            raise NodeInputError(tr("The neural network cannot use column {col!r} of type {dtype}; drop or convert "
                                    "it", col=name, dtype=str(col.dtype)))
        if kind == "text":
            spec = mlp_flavor.fit_text(name, col, settings.max_categories, settings.min_category_rows)
            if not spec["categories"]:
                ctx.log.warning(tr("column {col!r} has no value in {n} or more training rows (an identifier?); "
                                   "left out", col=name, n=settings.min_category_rows))
                continue
            distinct = col.drop_nulls().n_unique()
            if distinct > len(spec["categories"]):
                ctx.log.info(tr("column {col!r}: {kept} of {n} categories get an input; the rest count as unseen",
                                col=name, kept=len(spec["categories"]), n=distinct))
            encoding.append(spec)
        else:
            encoding.append(mlp_flavor.fit_numeric(name, col))
    if not encoding:
        raise NodeInputError(tr("No usable feature columns are left for the neural network"))
    return encoding


def describe(table: pl.DataFrame, settings: MLPSettings, ctx: Context) -> dict[str, Any]:
    """The model's metadata per the model contract (flavors.py), known before training."""
    label = table[settings.label]
    problem_type = problem_type_of(label, settings.problem_type, ctx)
    frame, skipped = feature_frame(table, settings.label, settings.exclude, ctx)
    encoding = fit_encoding(frame, settings, ctx)
    features = [c["name"] for c in encoding]
    values = [] if problem_type == "regression" else label.unique().sort().to_list()
    return {
        "label": settings.label,
        "problem_type": problem_type,
        "features": features,
        "feature_kinds": feature_kinds(frame.select(features)),
        "classes": [str(v) for v in values],
        "class_values": values,
        "positive_class": str(values[1]) if problem_type == "binary" else None,
        "train_rows": table.height,
        "best_model": "MLP " + ("-".join(map(str, settings.layer_sizes())) or tr("linear")),
        "encoding": encoding,
        "left_out": skipped,
    }


# ---- training -----------------------------------------------------------------------------------------------
def resolve_device(setting: str) -> str:
    if setting == "cuda" and not cuda_available():
        raise NodeInputError(tr("Device is set to cuda but this worker has no CUDA GPU; choose auto or cpu"))
    if setting == "auto":
        return "cuda" if cuda_available() else "cpu"
    return setting


@contextlib.contextmanager
def deterministic(seed: int, device: str) -> Iterator[None]:
    """Seeded, deterministic torch for the duration of training; the global RNG and switches restored after."""
    import torch

    if device == "cuda":  # cuBLAS needs this before its first use to be deterministic; harmless if set already
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    was_on = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    devices = [torch.cuda.current_device()] if device == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=device == "cuda")
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(was_on, warn_only=was_warn)


def _loss_fn(problem_type: str) -> Any:
    import torch

    if problem_type == "binary":
        bce = torch.nn.BCEWithLogitsLoss()
        return lambda out, y: bce(out[:, 0], y)
    if problem_type == "multiclass":
        return torch.nn.CrossEntropyLoss()
    mse = torch.nn.MSELoss()
    return lambda out, y: mse(out[:, 0], y)


def _targets(y: np.ndarray, problem_type: str, target: dict[str, float] | None) -> Any:
    import torch

    if problem_type == "multiclass":
        return torch.from_numpy(y.astype(np.int64))
    if target is not None:
        y = (y - target["mean"]) / target["std"]
    return torch.from_numpy(y.astype(np.float32))


def train_network(arch: dict[str, Any], x: np.ndarray, y: np.ndarray, valid: tuple[np.ndarray, np.ndarray] | None,
                  problem_type: str, target: dict[str, float] | None, settings: MLPSettings, seed: int, device: str,
                  ctx: Context) -> tuple[dict[str, np.ndarray], dict[str, list[float]], int]:
    """Train; return the weights (of the best validation epoch when `valid` is given), the loss history per epoch,
    and the epoch whose weights were kept (1-based)."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    loss_fn = _loss_fn(problem_type)
    history: dict[str, list[float]] = {"train": [], "valid": []}
    with deterministic(seed, device):
        net = mlp_flavor.build_network(arch).to(device)
        optimiser = torch.optim.AdamW(net.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
        loader = DataLoader(TensorDataset(torch.from_numpy(x), _targets(y, problem_type, target)),
                            batch_size=settings.batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(seed))
        if valid is not None:
            vx = torch.from_numpy(valid[0]).to(device)
            vy = _targets(valid[1], problem_type, target).to(device)
        best_loss, best_epoch, best_state = float("inf"), settings.epochs, None
        for epoch in range(1, settings.epochs + 1):
            ctx.check_cancelled()
            net.train()
            total = 0.0
            for bx, by in loader:
                bx, by = bx.to(device), by.to(device)
                optimiser.zero_grad()
                loss = loss_fn(net(bx), by)
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(bx)
            history["train"].append(total / len(x))
            message = tr("epoch {i}/{n}, loss {loss:.4f}", i=epoch, n=settings.epochs, loss=history["train"][-1])
            if valid is not None:
                net.eval()
                with torch.no_grad():
                    history["valid"].append(float(loss_fn(net(vx), vy)))
                message = tr("epoch {i}/{n}, loss {loss:.4f}, validation loss {valid:.4f}", i=epoch,
                             n=settings.epochs, loss=history["train"][-1], valid=history["valid"][-1])
                if history["valid"][-1] < best_loss:
                    best_loss, best_epoch = history["valid"][-1], epoch
                    best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
            ctx.progress(0.95 * epoch / settings.epochs, message)
            if valid is not None and epoch - best_epoch >= settings.patience:
                ctx.log.info(tr("early stopping after epoch {i}: the best validation loss was at epoch {best}",
                                i=epoch, best=best_epoch))
                break
        if best_state is None:
            best_epoch = len(history["train"])
            best_state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    return {k: v.numpy() for k, v in best_state.items()}, history, best_epoch


# ---- report -------------------------------------------------------------------------------------------------
def _valid_metrics(doc: dict[str, Any], weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray,
                   info: dict[str, Any]) -> dict[str, Any]:
    """Metrics of the kept weights on the validation rows, scored exactly as the flavor will score them."""
    import torch

    net = mlp_flavor.build_network(doc["architecture"])
    net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    scores = mlp_flavor.scores_from_outputs(doc, mlp_flavor.raw_outputs(net.eval(), x))
    return validation_metrics(scores, y, info["class_values"])


def _loss_figure(report: Report, history: dict[str, list[float]], best_epoch: int) -> None:
    fig = figure(6, 4)
    ax = fig.subplots()
    epochs = np.arange(1, len(history["train"]) + 1)
    ax.plot(epochs, history["train"], lw=2, label=tr("Training loss"))
    if history["valid"]:
        ax.plot(epochs, history["valid"], lw=2, label=tr("Validation loss"))
        ax.axvline(best_epoch, ls=":", c="grey", label=tr("Kept epoch ({n})", n=best_epoch))
    ax.set_xlabel(tr("Epoch"))
    ax.set_ylabel(tr("Loss"))
    ax.set_title(tr("Loss curve"))
    ax.legend(loc="upper right")
    report.add_figure(tr("Loss curve"), fig)


def _history_table(history: dict[str, list[float]]) -> pl.DataFrame:
    n = len(history["train"])
    return pl.DataFrame({"epoch": list(range(1, n + 1)), "train_loss": history["train"],
                         "valid_loss": history["valid"] or [None] * n}, schema_overrides={"valid_loss": pl.Float64})


# ---- the node -----------------------------------------------------------------------------------------------
@node("automl.mlp", version=1, title=N_("Neural network (MLP)"), category=N_("Modeling"), icon="automl", heavy=True)
class MLP(Node):
    """Train a feed-forward neural network on a table, reproducibly, on the CPU or a CUDA GPU."""

    inputs = {"train": Table,
              "valid": VALID_INPUT, "transform": TRANSFORM_INPUT}
    outputs = {"model": Model, "report": ReportPort}
    Settings = MLPSettings

    def compute(self, inputs: dict, settings: MLPSettings, ctx: Context) -> dict:
        table = labelled_rows(inputs["train"], settings, ctx)  # type: ignore[arg-type]  # AutoML's label rules
        device = resolve_device(settings.device)
        seed = ctx.seed if settings.seed is None else settings.seed
        info = describe(table, settings, ctx)
        encoding = info.pop("encoding")
        problem_type = info["problem_type"]
        x = mlp_flavor.encode(encoding, table.select(info["features"]))
        y = label_codes(table[settings.label], info, tr("Training table"))
        valid = self._valid(inputs.get("valid"), info, encoding, settings, ctx)
        target = None
        if problem_type == "regression":
            target = {"mean": float(y.mean()), "std": float(y.std()) or 1.0}
        arch = {"inputs": x.shape[1], "hidden": settings.layer_sizes(), "dropout": settings.dropout,
                "outputs": len(info["classes"]) if problem_type == "multiclass" else 1, "activation": "relu"}
        ctx.log.info(tr("training on {device}: {rows} rows, {inputs} inputs", device=device, rows=len(x),
                        inputs=x.shape[1]))

        with _TRAINING:  # torch's seed and determinism switches are process-wide: one training at a time
            weights, history, best_epoch = train_network(arch, x, y, valid, problem_type, target, settings, seed,
                                                         device, ctx)
        doc = {"architecture": arch, "encoding": encoding, "problem_type": problem_type,
               "class_values": info["class_values"], "target": target,
               "inputs": mlp_flavor.input_names(encoding)}
        folder = ctx.workdir / "mlp"
        folder.mkdir(parents=True, exist_ok=True)
        mlp_flavor.save(folder, doc, weights)
        info.update({"device": device, "epochs_run": len(history["train"]), "best_epoch": best_epoch,
                     "hidden_layers": settings.layer_sizes(), "network_inputs": x.shape[1]})
        info.update(provenance(inputs.get("transform"), ctx))

        report = Report(title=tr("Neural network (MLP)"), kind="model")
        if valid is not None:
            info["metrics"] = _valid_metrics(doc, weights, valid[0], valid[1], info)
        report.metrics = {"problem_type": problem_type, "device": device, "epochs_run": info["epochs_run"],
                          "best_epoch": best_epoch, "train_loss": history["train"][best_epoch - 1],
                          **({"valid_loss": history["valid"][best_epoch - 1]} if history["valid"] else {}),
                          **info.get("metrics", {})}
        report.tables[tr("Training history")] = _history_table(history)
        _loss_figure(report, history, best_epoch)
        ctx.progress(1.0)
        return {"model": ModelRef("mlp", folder, info), "report": report}

    @staticmethod
    def _valid(valid: pl.DataFrame | None, info: dict[str, Any], encoding: list[dict[str, Any]],
               settings: MLPSettings, ctx: Context) -> tuple[np.ndarray, np.ndarray] | None:
        """(input matrix, targets) of the validation rows with a label, or None."""
        if valid is None:
            ctx.log.info(tr("no validation table: training runs all {n} epochs", n=settings.epochs))
            return None
        features, labels = validation_rows(valid, info, "mlp", settings.label, ctx)
        return mlp_flavor.encode(encoding, features), label_codes(labels, info, tr("Validation table"))
