"""Label: turn a table, a text column or a folder of images into a labeling task for business staff, and bring
their labels back onto the canvas as a table (plus Parquet, CSV, JSONL spans or COCO exports).

The labels live in the project's label store (engine/labels), not in the node: people label in the labeling window
while the canvas stays as it is. So that the canvas notices, the node's cache fingerprint includes a digest of the
task's labels, like a file reader's includes its file: a new, changed or reviewed label gives the node a new cache
key, which re-runs it and exactly the nodes downstream of it (retrain, predict, re-rank), while unchanged labels
leave the whole flow cached. A receipt of the export file makes a deleted or edited export be written again.

On its first run the node creates the task; later runs check that the input still shows the same items, append
the rows the task does not know yet (they take their place in its order), bring the label schema up to date
(colours, keys, instructions, new labels), add newly named labelers and refresh the model's pre-labels (a retrained
model re-ranks the rest), never touching labels. Appending items or recolouring labels leaves the label digest as it
is, so with "drop" the output table and everything downstream stay as they were.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import polars as pl
from pydantic import Field, model_validator

from assetcenter.labeling import (
    annotation_digest,
    open_project_labels,
    send_label_events,
)
from engine.errors import NodeInputError
from engine.fileio import sha256_text
from engine.i18n import N_, tr
from engine.labels import exports
from engine.labels.agreement import compute_agreement
from engine.labels.schema import LabelDef, LabelSchema, LabelSchemaError
from engine.labels.store import LabelStore, LabelStoreError
from engine.ports import Report, ReportPort, Table
from engine.runlog import os_user
from engine.sdk import Context, FingerprintContext, Node, NodeSettings, PortSpec, node
from nodes.label import outcome
from nodes.label.items import (
    IMAGE_KINDS,
    TEXT_KINDS,
    Items,
    image_items,
    list_images,
    rename_reserved,
    same_payload,
    table_items,
)
from nodes.label.prelabels import Prelabels, prelabels

Kind = Literal["record", "text", "spans", "image", "boxes"]
_EXPORT_FILTERS = {"parquet": "Parquet (*.parquet)", "csv": "CSV (*.csv)", "jsonl": "JSON Lines (*.jsonl)",
                   "coco": "COCO JSON (*.json)"}


class LabelSettings(NodeSettings):
    task: str = Field("labels", min_length=1, max_length=255, title=N_("Task name"), description=N_(
        "The task as labelers see it in the labeling window; one task per name in the project"))
    kind: Kind = Field("record", title=N_("Task kind"), description=N_(
        "record: classify table rows; text: classify texts; spans: mark parts of texts; image: classify images; "
        "boxes: draw boxes on images"))
    text_column: str = Field("", title=N_("Text column"), description=N_("text and spans tasks: the texts to label"),
                             json_schema_extra={"widget": "column", "port": "table"})
    id_column: str = Field("", title=N_("ID column"), description=N_(
        "Optional: ties labels to ids instead of row numbers (and matches predictions by id)"),
        json_schema_extra={"widget": "column", "port": "table"})
    fields: list[str] = Field(default_factory=list, title=N_("Fields shown"), description=N_(
        "record tasks: the columns labelers see (empty: all)"))
    image_folder: str = Field("", title=N_("Image folder"), description=N_(
        "image and boxes tasks: the folder of PNG/JPEG images; a relative path is inside the project"),
        json_schema_extra={"widget": "folder"})
    multi: bool = Field(False, title=N_("Several labels per text"), description=N_("text tasks only"))
    labels: list[LabelDef] = Field(default_factory=lambda: [LabelDef(name="yes", color="#59a14f", hotkey="1"),
                                                            LabelDef(name="no", color="#e15759", hotkey="2")],
                                   title=N_("Labels"), description=N_(
        "The labels, their colours and the keys that pick them"), json_schema_extra={"widget": "label-schema"})
    instructions: str = Field("", title=N_("Instructions"), description=N_("Shown to labelers beside each item"),
                              json_schema_extra={"widget": "multiline"})
    overlap: int = Field(1, ge=1, le=50, title=N_("Labelers per item"), description=N_(
        "How many people label each item (2 or more gives agreement figures)"))
    labelers: list[str] = Field(default_factory=list, title=N_("Labelers"), description=N_(
        "Who may label (empty: anyone in the project); names added later are assigned on the next run"))
    ordering: Literal["given", "random", "uncertainty"] = Field("given", title=N_("Order"), description=N_(
        "given: as in the input; random; uncertainty: the model's least sure items first (active learning)"))
    uncertainty: Literal["least_confidence", "margin"] = Field("least_confidence", title=N_("Uncertainty"),
                                                               description=N_(
        "least_confidence: 1 - the predicted class's probability; margin: 1 - (best - second best)"))
    prediction_column: str = Field("prediction", min_length=1, title=N_("Prediction column"))
    probability_column: str = Field("probability", min_length=1, title=N_("Probability column"), description=N_(
        "Binary: the positive class's probability; multiclass: the prefix of one column per class"))
    unlabeled: Literal["keep", "drop"] = Field("keep", title=N_("Items without a label"), description=N_(
        "keep: they flow through with an empty label; drop: only labeled items flow on"))
    export_format: Literal["none", "parquet", "csv", "jsonl", "coco"] = Field("none", title=N_("Export"),
                                                                              description=N_(
        "Also write the labeled table: Parquet, CSV, JSONL (spans tasks) or COCO JSON (boxes tasks)"))
    export_path: str = Field("", title=N_("Export file"), description=N_("A relative path is inside the project"),
                             json_schema_extra={"widget": "save-file"})

    def label_schema(self) -> LabelSchema:
        return LabelSchema.parse({"kind": self.kind, "multi": self.multi, "instructions": self.instructions,
                                  "labels": [label.model_dump() for label in self.labels]})

    @model_validator(mode="after")
    def _consistent(self) -> LabelSettings:
        try:
            self.label_schema()
        except LabelSchemaError as exc:
            raise ValueError(str(exc)) from None
        if self.kind in TEXT_KINDS and not self.text_column.strip():
            raise ValueError(tr("text_column: a {kind} task needs the column that holds the texts", kind=self.kind))
        if self.kind in IMAGE_KINDS and not self.image_folder.strip():
            raise ValueError(tr("image_folder: image and boxes tasks need the folder of images"))
        if self.export_format == "jsonl" and self.kind != "spans":
            raise ValueError(tr("export_format: JSONL is the spans format; a {kind} task exports Parquet or CSV",
                                kind=self.kind))
        if self.export_format == "coco" and self.kind != "boxes":
            raise ValueError(tr("export_format: COCO is the boxes format; a {kind} task exports Parquet or CSV",
                                kind=self.kind))
        if self.export_format != "none" and not self.export_path.strip():
            raise ValueError(tr("export_path: choose the file to export to"))
        return self


@node("label.label", version=1, title=N_("Label"), category=N_("Labeling"), icon="label")
class Label(Node):
    """Have people label a table, texts or images (with model pre-labels), and get the labeled table back."""

    inputs: ClassVar[dict[str, Any]] = {
        "table": PortSpec("table", Table, required=False, description=N_(
            "Record, text and spans tasks: the rows to label")),
        "predictions": PortSpec("predictions", Table, required=False, description=N_(
            "Optional: a Predict output for the same rows; its predictions become pre-labels")),
    }
    outputs: ClassVar[dict[str, Any]] = {"table": Table, "report": ReportPort}
    Settings = LabelSettings

    @classmethod
    def fingerprint(cls, settings: LabelSettings, ctx: FingerprintContext) -> str | None:
        """The task's labels as they are now (and the image files): new labels re-run this node and what follows."""
        if ctx.project_dir is None:
            return None
        parts = [annotation_digest(ctx.project_dir, settings.task)]
        if settings.kind in IMAGE_KINDS:
            parts += [f"{p.name}={ctx.files.hash(p)}" for p in list_images(ctx.resolve_path(settings.image_folder))]
        return sha256_text(*parts)

    @classmethod
    def receipt(cls, settings: LabelSettings, ctx: FingerprintContext) -> str | None:
        """The export file as written: deleting or editing it makes the next run write it again."""
        if settings.export_format == "none":
            return None
        path = ctx.resolve_path(settings.export_path)
        return ctx.files.hash(path) if path.is_file() else None

    def compute(self, inputs: dict, settings: LabelSettings, ctx: Context) -> dict:
        if ctx.project_dir is None:
            raise NodeInputError(tr("The Label node keeps its labels in the project; save the project first"))
        schema = settings.label_schema()
        items = self._items(inputs, settings, ctx)
        pre = None
        if inputs.get("predictions") is not None:
            pre = prelabels(inputs["predictions"], items.keys, schema.names, kind=settings.kind,
                            id_column=settings.id_column, prediction_column=settings.prediction_column,
                            probability_column=settings.probability_column, uncertainty=settings.uncertainty)
        elif settings.ordering == "uncertainty":
            ctx.log.warning(tr("Order by uncertainty needs predictions; without them the items keep their order"))
        ctx.check_cancelled()
        ctx.progress(0.2, tr("opening the label store"))
        try:
            store = open_project_labels(ctx.project_dir)
        except LabelStoreError as exc:
            raise NodeInputError(str(exc)) from None
        try:
            notes = self._sync(store, settings, schema, items, pre, ctx)
            ctx.progress(0.5, tr("reading the labels"))
            table, report = self._results(store, settings, schema, items, notes)
            self._send_trail(store, ctx)
        finally:
            store.close()
        if settings.export_format != "none":
            ctx.progress(0.9, tr("writing the export"))
            self._export(table, settings, schema, ctx)
        return {"table": table, "report": report}

    @staticmethod
    def _send_trail(store: LabelStore, ctx: Context) -> None:
        """Creating, growing or re-ranking a task is labeling work too: its events go to the asset center's audit
        log now when connected (an unreachable center only delays them: the labeling window sends them later)."""
        try:
            sent = send_label_events(store, ctx.project_dir)
        except Exception as exc:  # noqa: BLE001 - the events stay in the label store
            ctx.log.warning(tr("The labeling events could not be sent to the asset center yet ({reason}); they are "
                               "kept and sent later", reason=str(exc)[:300] or type(exc).__name__))
        else:
            if sent:
                ctx.log.info(tr("sent {n} labeling events to the asset center's audit log", n=sent))

    # ---- items and the stored task -------------------------------------------------------------------------

    @staticmethod
    def _items(inputs: dict, settings: LabelSettings, ctx: Context) -> Items:
        if settings.kind in IMAGE_KINDS:
            if inputs.get("table") is not None:
                ctx.log.warning(tr("Image and boxes tasks read their images from the image folder; the input "
                                   "table is not used"))
            return image_items(ctx.resolve_path(settings.image_folder))
        table = inputs.get("table")
        if table is None:
            raise NodeInputError(tr("A {kind} task labels the rows of a table: connect the table input",
                                    kind=settings.kind))
        return table_items(table, settings.kind, text_column=settings.text_column, id_column=settings.id_column,
                           fields=settings.fields)

    def _sync(self, store: LabelStore, settings: LabelSettings, schema: LabelSchema, items: Items,
              pre: Prelabels | None, ctx: Context) -> list[str]:
        """Create the task, or bring an existing one up to date; returns notes for the report."""
        who = os_user()
        if settings.task not in store.task_names():
            try:
                store.create_task(settings.task, schema, items.payloads, overlap=settings.overlap,
                                  ordering=settings.ordering, labelers=settings.labelers,
                                  prelabels=pre.values if pre else None,
                                  confidences=pre.confidences if pre else None,
                                  uncertainties=pre.uncertainties if pre else None,
                                  external_ids=items.keys, created_by=who, seed=ctx.seed)
            except LabelStoreError as exc:
                if settings.task not in store.task_names():
                    raise NodeInputError(str(exc)) from None
                # another Label node of this task created it at the same moment: use it as it is
            else:
                ctx.log.info(tr("created labeling task {task} with {n} items", task=settings.task,
                                n=len(items.keys)))
                return []
        stored = self._stored_items(store, settings.task, items)  # refuse a changed input before writing anything
        notes = self._check_task(store, settings, schema, who, ctx)
        new = [i for i, key in enumerate(items.keys) if key not in stored]
        if new:
            try:
                store.add_items(settings.task, [items.payloads[i] for i in new],
                                external_ids=[items.keys[i] for i in new],
                                prelabels=[pre.values[i] for i in new] if pre else None,
                                confidences=[pre.confidences[i] for i in new] if pre else None,
                                uncertainties=[pre.uncertainties[i] for i in new] if pre else None, added_by=who)
            except (LabelStoreError, LabelSchemaError) as exc:
                stored = self._stored_items(store, settings.task, items)
                if any(items.keys[i] not in stored for i in new):
                    raise NodeInputError(str(exc)) from None
                new = []  # another Label node of this task added the same rows at the same moment
            else:
                added = tr("added {n} new items to task {task}", n=len(new), task=settings.task)
                ctx.log.info(added)
        gone = len(stored) - (len(items.keys) - len(new))
        if gone:
            notes.append(tr("{n} items of the task are no longer in the input; their labels are not in the output",
                            n=gone))
        people = sorted(set(settings.labelers) - set(store.labelers(settings.task)))
        if people:
            store.add_labelers(settings.task, people, added_by=who)
            ctx.log.info(tr("assigned {names} to task {task}", names=", ".join(people), task=settings.task))
        if pre is not None:
            changes = {stored[key][0]: pre.of(i) for i, key in enumerate(items.keys) if key in stored}
            if changes:
                store.update_predictions(settings.task, changes, by=who)
                ctx.log.info(tr("refreshed the pre-labels of {n} items", n=len(changes)))
        for note in notes:
            ctx.log.warning(note)
        return [added, *notes] if new else notes

    @staticmethod
    def _check_task(store: LabelStore, settings: LabelSettings, schema: LabelSchema, who: str,
                    ctx: Context) -> list[str]:
        """An existing task keeps its kind and labels (people labeled with them) but takes new labels, colours, keys
        and instructions; other differences are noted."""
        stored = store.schema(settings.task)
        same_shape = (stored.kind, stored.multi) == (schema.kind, schema.multi)
        if not same_shape or not set(stored.names) <= set(schema.names):
            raise NodeInputError(tr(
                "Task {task} already exists as a {kind} task with the labels {labels}{multi}; its kind cannot change "
                "and its labels cannot be removed or renamed once people label (new labels can be added). Set them "
                "back, or use a new task name", task=settings.task, kind=stored.kind, labels=", ".join(stored.names),
                multi=tr(" (several per item)") if stored.multi else ""))
        if stored != schema:
            try:
                store.update_schema(settings.task, schema, by=who)
            except (LabelStoreError, LabelSchemaError) as exc:
                raise NodeInputError(str(exc)) from None
            added = [name for name in schema.names if name not in stored.names]
            if added:
                ctx.log.info(tr("task {task} now shows the labels, colours, keys and instructions set here (new "
                                "labels: {names})", task=settings.task, names=", ".join(added)))
            else:
                ctx.log.info(tr("task {task} now shows the labels, colours, keys and instructions set here",
                                task=settings.task))
        notes = []
        summary = store.task_summary(settings.task)
        if (summary["overlap"], summary["ordering"]) != (settings.overlap, settings.ordering):
            notes.append(tr("Task {task} keeps {overlap} labelers per item and the {ordering} order it was created "
                            "with", task=settings.task, overlap=summary["overlap"], ordering=summary["ordering"]))
        return notes

    @classmethod
    def _stored_items(cls, store: LabelStore, task: str, items: Items) -> dict[str, tuple[int, Any]]:
        """The task's items by key, once the input's rows that the task has are known to show what was labeled."""
        stored = cls._positions(store, task)
        for key, payload in zip(items.keys, items.payloads, strict=True):
            if key in stored and not same_payload(stored[key][1], payload):
                raise NodeInputError(tr(
                    "The input changed since task {task} was created: item {item} no longer shows what was labeled. "
                    "Restore the input, or use a new task name for the new data", task=task, item=key))
        return stored

    @staticmethod
    def _positions(store: LabelStore, task: str) -> dict[str, tuple[int, Any]]:
        """Stored item key -> (position, payload)."""
        out: dict[str, tuple[int, Any]] = {}
        for row in store.labeled_rows(task, statuses=(), include_unlabeled=True):
            key = row["external_id"] if row["external_id"] is not None else str(row["position"])
            out[key] = (row["position"], row["payload"])
        return out

    # ---- the labeled table and the report ------------------------------------------------------------------

    def _results(self, store: LabelStore, settings: LabelSettings, schema: LabelSchema, items: Items,
                 notes: list[str]) -> tuple[pl.DataFrame, Report]:
        rows = store.labeled_rows(settings.task, include_unlabeled=True)
        key_of = {r["position"]: r["external_id"] if r["external_id"] is not None else str(r["position"])
                  for r in rows}
        position_of = {key: pos for pos, key in key_of.items()}
        resolved = outcome.resolve(rows)
        label_column = exports.label_column(settings.kind, settings.multi)
        frame = outcome.items_frame(items.keys, [position_of.get(k) for k in items.keys], resolved,
                                    rename_reserved(items.frame, label_column))
        table = exports.labeled_table(frame, settings.kind, settings.multi,
                                      keep_unlabeled=settings.unlabeled == "keep")
        agreement = compute_agreement([(r["position"], r["labeler"], r["value"]) for r in rows if r["labeler"]],
                                      settings.kind, multi=settings.multi, labels=schema.names)
        summary = store.task_summary(settings.task)
        queue = store.review_queue(settings.task)
        statuses = frame.get_column("status")
        headline = agreement.headline
        report = Report(title=tr("Labeling task {task}", task=settings.task), kind="labeling")
        report.metrics = {
            "items": len(items.keys),
            "labeled": int(statuses.is_in(["accepted", "submitted"]).sum()),
            "accepted": int((statuses == "accepted").sum()),
            "conflicts": int((statuses == "conflict").sum()),
            "complete": int(summary["complete_items"]),
            "progress": round(float(summary["progress"]), 4),
            "review_queue": len(queue),
            "agreement": tr(headline.title),
            "agreement_value": headline.overall if headline.overall is not None else tr("n/a"),
            "items_compared": agreement.items_compared,
        }
        report.tables[tr("Conflicts (most disagreeing first)")] = outcome.conflicts_table(agreement, key_of)
        report.tables[tr("Progress per labeler")] = outcome.progress_table(summary)
        report.tables.update(outcome.scores_tables(agreement))
        report.notes = [*notes, *agreement.notes]
        return table, report

    @staticmethod
    def _export(table: pl.DataFrame, settings: LabelSettings, schema: LabelSchema, ctx: Context) -> Path:
        target = ctx.resolve_path(settings.export_path)
        if target.is_dir():
            raise NodeInputError(tr("Export file {path} is a folder; give a file name", path=target))
        target.parent.mkdir(parents=True, exist_ok=True)
        out = table
        if settings.kind == "spans" and settings.text_column != "text":
            out = table.with_columns(pl.col(settings.text_column).alias("text"))
        exports.export_labels(out, target, settings.export_format, settings.kind, labels=schema.names)
        ctx.log.info(tr("wrote {n} rows to {path}", n=out.height, path=target))
        return target
