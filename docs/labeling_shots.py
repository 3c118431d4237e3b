"""README screenshots of the labeling workspace: a record task on the sample credit data, a spans task on complaint
texts (English and Chinese) and a boxes task on a generated scan, each shown by `ledgerflow label --screenshot`
in English and Chinese; and the review page (`--review`) of a complaints task that two labelers marked
differently, as a third person (the reviewer) sees it. Run on a virtual screen from the repository root:

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python docs/labeling_shots.py [OUT_FOLDER]

It writes OUT_FOLDER/labeling-{record,spans,boxes,review}-{en,zh_CN}.png (default docs/images). The demo projects are
built in a temporary folder, with the task texts (labels, instructions) in the screenshot's language, as an
analyst in that language would write them.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.labels.store import open_label_store
from engine.project import STATE_DIR, Project
from engine.templates import SAMPLE_DATA

FIELDS = ["customer_id", "age", "employment_type", "employment_years", "annual_income", "monthly_debt",
          "debt_to_income", "credit_utilization", "num_delinquencies_2y", "loan_amount", "loan_term_months",
          "loan_purpose"]

COMPLAINTS = [
    ("My name is Sarah Jones. On 3 May you charged me a late fee of $35.00 on account 6222 0210 0438 7751, "
     "although I paid on time. Please refund the fee."),
    "我叫王丽，账户 6217 0033 1200 4589 在5月12日被重复扣款 1,280.00 元，客服一直没有回复，请尽快退还。",
    "Mr. Chen called about a transfer of ¥5,000 to account 6013 8200 1123 9087 that never arrived.",
]
# (words, label index) of the model's suggested marks; offsets are found in the text so they stay right
SUGGESTED = [[("Sarah Jones", 0), ("$35.00", 1), ("6222 0210 0438 7751", 2)],
             [("王丽", 0), ("6217 0033 1200 4589", 2), ("1,280.00 元", 1)],
             [("Chen", 0), ("¥5,000", 1)]]

TEXTS = {
    "en": {
        "record": ("Loan applications — first review", ["approve", "review", "decline"],
                   ("Decide each application from its fields.\n\n"
                    "- **approve**: debt-to-income below 0.40 and no delinquencies in 2 years\n"
                    "- **review**: anything unusual, e.g. a large loan for a short job history\n"
                    "- **decline**: two or more delinquencies, or debt-to-income above 0.60\n\n"
                    "Not sure? Press **S** and say why.")),
        "spans": ("Complaints — mark names, amounts, accounts", ["person", "amount", "account number"],
                  ("Mark every **person**, **amount** (with its currency) and **account number** in the complaint."
                   "\n\nSelect the words with the mouse, or with Shift+arrows, then press the label's key. Do not "
                   "mark bank staff titles (Mr., Ms.).")),
        "review": "Complaints — team review",
        "boxes": ("Scanned forms — signature, stamp, photo", ["signature", "stamp", "photo"],
                  ("Draw a tight box around each **signature**, bank **stamp** and ID **photo** on the scan.\n\n"
                   "Zoom with the wheel to check small stamps. Skip pages you cannot read.")),
    },
    "zh_CN": {
        "record": ("贷款申请 — 初审", ["批准", "复核", "拒绝"],
                   ("根据各字段判断每笔申请。\n\n"
                    "- **批准**：负债收入比低于 0.40，且两年内无逾期\n"
                    "- **复核**：有异常情况，例如工作年限短但贷款金额大\n"
                    "- **拒绝**：两次及以上逾期，或负债收入比高于 0.60\n\n"
                    "拿不准？按 **S** 跳过并说明原因。")),
        "spans": ("投诉 — 标注姓名、金额、账号", ["姓名", "金额", "账号"],
                  ("标出投诉中的每个**姓名**、**金额**（含币种）和**账号**。\n\n"
                   "用鼠标或 Shift+方向键选中文字，再按标签的快捷键。")),
        "review": "投诉 — 团队复核",
        "boxes": ("扫描表单 — 签名、印章、照片", ["签名", "印章", "照片"],
                  ("在扫描件上框出每个**签名**、银行**印章**和证件**照片**，框要贴紧。\n\n"
                   "用滚轮放大查看小印章。看不清的页面请跳过。")),
    },
}
COLORS = ["#2e9d5b", "#e0a100", "#d1495b"]
LABELERS, REVIEWER = ("li.wei", "wang.fang"), "chen.jing"
# what the second labeler marked differently on the review shot's first complaint: the amount with its words
# around it, and no account number (the first labeler marked exactly the model's suggestion)
SECOND_TAKE = {"en": [("Sarah Jones", 0), ("late fee of $35.00", 1)],
               "zh_CN": [("王丽", 0), ("重复扣款 1,280.00 元", 1)]}
SPAN_COLORS = ["#4e79a7", "#f28e2b", "#9c6ade"]
BOX_COLORS = ["#2f6fde", "#d1495b", "#2e9d5b"]


def schema(kind: str, names: list[str], colors: list[str], instructions: str) -> dict:
    return {"kind": kind, "labels": [{"name": n, "color": c, "hotkey": str(i + 1)}
                                     for i, (n, c) in enumerate(zip(names, colors, strict=True))],
            "instructions": instructions}


def scan_image(path: Path) -> tuple[list[dict], float]:
    """A bank form as a scanner would give it: text lines, an ID photo, a signature and a red stamp."""
    from PIL import Image, ImageDraw, ImageFilter

    img = Image.new("RGB", (1240, 1754), "#fbfaf6")
    d = ImageDraw.Draw(img)
    d.rectangle((80, 80, 1160, 200), outline="#30343b", width=4)
    d.rectangle((110, 115, 560, 165), fill="#30343b")  # the form's title bar
    for row in range(12):
        y = 280 + row * 70
        d.line((120, y, 700 if row % 3 else 1100, y), fill="#9aa0a8", width=3)
        d.rectangle((120, y - 34, 120 + 90 + 25 * (row % 5), y - 14), fill="#5d636c")
    d.rectangle((820, 250, 1100, 600), outline="#444", width=3, fill="#dfe6ee")  # the ID photo
    d.ellipse((900, 300, 1020, 420), fill="#9fb0c4")
    d.rounded_rectangle((860, 430, 1060, 600), radius=60, fill="#9fb0c4")
    sig = [(170, 1420), (230, 1350), (260, 1440), (320, 1370), (360, 1450), (420, 1380), (470, 1430),
           (540, 1390), (600, 1420)]
    d.line(sig, fill="#1b2a6b", width=7, joint="curve")
    d.ellipse((780, 1250, 1080, 1550), outline="#c8323c", width=12)  # the stamp
    d.ellipse((830, 1300, 1030, 1500), outline="#c8323c", width=5)
    d.polygon([(930, 1340), (955, 1400), (1010, 1400), (965, 1435), (985, 1490), (930, 1455), (875, 1490),
               (895, 1435), (850, 1400), (905, 1400)], fill="#c8323c")
    img = img.filter(ImageFilter.GaussianBlur(0.8)).rotate(0.6, fillcolor="#e9e7e1")
    img.save(path)
    boxes = [{"x": 150, "y": 1330, "w": 470, "h": 140, "label": 0},
             {"x": 770, "y": 1240, "w": 320, "h": 320, "label": 1}]
    return boxes, 0.81


def build(folder: Path, lang: str) -> None:
    Project.new(folder, "Labeling demo").save()
    texts = TEXTS[lang]
    store = open_label_store(folder / STATE_DIR)
    try:
        name, labels, instructions = texts["record"]
        rows = pl.read_csv(SAMPLE_DATA, n_rows=40).select(FIELDS)
        records = [{"fields": r} for r in rows.to_dicts()]
        guess = [labels[0] if r["debt_to_income"] < 0.4 and r["num_delinquencies_2y"] == 0 else labels[1]
                 for r in rows.to_dicts()]
        store.create_task(name, schema("record", labels, COLORS, instructions), records,
                          prelabels=[{"labels": [g]} for g in guess],
                          confidences=[0.62 + 0.3 * ((i * 37) % 10) / 10 for i in range(len(records))],
                          external_ids=[r["customer_id"] for r in rows.to_dicts()], created_by="analyst")
        name, labels, instructions = texts["spans"]
        order = [1, 0, 2] if lang == "zh_CN" else [0, 1, 2]  # the first item shown is in the screenshot's language
        complaints, suggested = [COMPLAINTS[i] for i in order], [SUGGESTED[i] for i in order]
        pre = []
        for text, marks in zip(complaints, suggested, strict=True):
            spans = []
            for words, label in marks:
                start = text.index(words)
                spans.append({"start": start, "end": start + len(words), "label": labels[label]})
            pre.append({"spans": spans})
        store.create_task(name, schema("spans", labels, SPAN_COLORS, instructions), [{"text": t} for t in complaints],
                          prelabels=pre, confidences=[0.88, 0.74, 0.69],
                          created_by="analyst")
        review_task(store, lang, complaints, pre, labels, instructions)
        name, labels, instructions = texts["boxes"]
        images = folder / "scans"
        images.mkdir(exist_ok=True)
        boxes, confidence = scan_image(images / "form-001.png")
        store.create_task(name, schema("boxes", labels, BOX_COLORS, instructions),
                          [{"image": "scans/form-001.png", "width": 1240, "height": 1754}],
                          prelabels=[{"boxes": [{**b, "label": labels[b["label"]]} for b in boxes]}],
                          confidences=[confidence], created_by="analyst")
    finally:
        store.close()


def review_task(store, lang: str, complaints: list[str], suggested: list[dict], labels: list[str],
                instructions: str) -> None:
    """The complaints again, labeled by two people (overlap 2): they agree on the later texts and disagree on the
    first, which the review queue therefore shows first."""
    store.create_task(TEXTS[lang]["review"], schema("spans", labels, SPAN_COLORS, instructions),
                      [{"text": t} for t in complaints], overlap=2, labelers=list(LABELERS), prelabels=suggested,
                      confidences=[0.88, 0.74, 0.69], created_by="analyst")
    first = complaints[0]
    differing = [{"start": first.index(w), "end": first.index(w) + len(w), "label": labels[i]}
                 for w, i in SECOND_TAKE[lang]]
    doubt = "Not sure the account number is the customer's." if lang == "en" else "不确定这个账号是否是客户的。"
    for position, value in enumerate(suggested):
        item_id = store.item(TEXTS[lang]["review"], position)["item_id"]
        store.save(TEXTS[lang]["review"], item_id, LABELERS[0], value, 0)
        if position == 0:
            store.save(TEXTS[lang]["review"], item_id, LABELERS[1], {"spans": differing}, 0, comment=doubt)
        else:
            store.save(TEXTS[lang]["review"], item_id, LABELERS[1], value, 0)


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="ledgerflow-labeling-") as tmp:
        for lang in ("en", "zh_CN"):
            folder = Path(tmp) / lang
            build(folder, lang)
            for kind in ("record", "spans", "boxes", "review"):
                target = out / f"labeling-{kind}-{lang}.png"
                if kind == "review":  # the reviewer's view of the disagreeing labels
                    cmd = [sys.executable, "-m", "engine.cli", "label", str(folder), "--task", TEXTS[lang][kind],
                           "--review", "--lang", lang, "--labeler", REVIEWER, "--screenshot", str(target)]
                else:
                    cmd = [sys.executable, "-m", "engine.cli", "label", str(folder), "--task", TEXTS[lang][kind][0],
                           "--lang", lang, "--labeler", "li.wei", "--screenshot", str(target)]
                rc = subprocess.run(cmd, check=False, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}).returncode
                print(f"{target}: {'ok' if rc == 0 else f'failed ({rc})'}")
                failed += rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "images"))
