"""Translation catalogs: every user-visible string in the code has a consistent zh_CN translation, and the
extractor's output (.pot/.po) is up to date with the code."""
from __future__ import annotations

import textwrap
from pathlib import Path

import polib
import pytest

import engine.i18n as i18n
from resources.translations import extract as ex

ROOT = Path(__file__).resolve().parent.parent
LANG = "zh_CN"
PO_PATH = ex.TRANSLATIONS / LANG / "ledgerflow.po"
FIX = ("run `python -m resources.translations.extract`, then translate the new/empty entries in "
       f"resources/translations/{LANG}/ledgerflow.po (`python -m resources.translations.extract --check` lists them)")


@pytest.fixture(autouse=True)
def _fresh_catalogs():
    i18n.catalog.cache_clear()
    yield
    i18n.catalog.cache_clear()


@pytest.fixture(scope="module")
def messages() -> dict[str, list[tuple[str, int]]]:
    return ex.extract_messages(ROOT)


@pytest.fixture(scope="module")
def zh_entries() -> dict[str, polib.POEntry]:
    po = polib.pofile(str(PO_PATH))
    assert po.metadata.get("Language") == LANG
    assert "charset=UTF-8" in po.metadata.get("Content-Type", "")
    return {e.msgid: e for e in po if not e.obsolete}


def _where(occ: list[tuple[str, int]]) -> str:
    return ", ".join(f"{p}:{n}" for p, n in occ[:2])


# ----------------------------------------------------------------------------------------- the real catalogs

def test_extractor_finds_the_strings(messages):
    assert len(messages) > 50
    assert "Read CSV" in messages  # N_ in @node(...)
    assert "Read a CSV file into a table, detecting encoding and delimiter." in messages  # node docstring
    assert any(p.startswith("engine/") for occ in messages.values() for p, _ in occ)
    assert not any(p.startswith(("tests/", ".venv/")) for occ in messages.values() for p, _ in occ)


def test_every_msgid_has_a_zh_cn_translation(messages, zh_entries):
    missing = [f"{m!r} [{_where(messages[m])}]" for m in sorted(messages)
               if m not in zh_entries or not zh_entries[m].msgstr.strip() or "fuzzy" in zh_entries[m].flags]
    assert not missing, f"{len(missing)} string(s) lack a {LANG} translation; {FIX}:\n  " + "\n  ".join(missing)


def test_placeholders_match(zh_entries):
    bad = [f"{e.msgid!r}: {ex.placeholders(e.msgid)} vs {e.msgstr!r}: {ex.placeholders(e.msgstr)}"
           for e in zh_entries.values() if e.msgstr and ex.placeholders(e.msgstr) != ex.placeholders(e.msgid)]
    assert not bad, "translations must keep every {placeholder} of the msgid exactly:\n  " + "\n  ".join(bad)


def test_translations_keep_edge_whitespace(zh_entries):
    bad = [f"{e.msgid!r} -> {e.msgstr!r}" for e in zh_entries.values()
           if e.msgstr and ex._edge_whitespace(e.msgstr) != ex._edge_whitespace(e.msgid)]
    assert not bad, "keep leading/trailing spaces and newlines of the msgid:\n  " + "\n  ".join(bad)


def test_check_catalog_is_clean():
    assert ex.check_catalog(LANG) == []


def test_tr_returns_chinese_and_formats():
    assert i18n.tr("Read CSV", lang=LANG) == "读取 CSV"
    assert i18n.tr("Read CSV", lang="en") == "Read CSV"
    msg = i18n.tr("Node {title!r} has no result for port {port!r}; run it first", lang=LANG,
                  title="读取 CSV", port="table")
    assert msg == "节点 '读取 CSV' 的端口 'table' 尚无结果；请先运行该节点"
    assert i18n.tr("{path} is empty", lang=LANG, path="data/a.csv") == "data/a.csv 为空"


def test_every_registered_node_is_translated():
    from engine.registry import default_registry

    cat = i18n.catalog(LANG)
    nodes = default_registry().all()
    assert nodes
    missing = []
    for cls in nodes:
        texts = {"title": cls.title, "category": cls.category, "description": cls.description}
        for field_name, field in cls.Settings.model_fields.items():
            texts[f"Settings.{field_name}.title"] = field.title
            texts[f"Settings.{field_name}.description"] = field.description
        for what, text in texts.items():
            if what in ("title", "category", "description"):
                assert text, f"{cls.type_id} has an empty {what}"
            if text and not cat.get(text):
                missing.append(f"{cls.type_id} {what}: {text!r}")
    assert not missing, (f"node strings without a {LANG} translation (wrap them in N_(...) if they are not, "
                         f"and {FIX}):\n  " + "\n  ".join(missing))


def test_pot_is_up_to_date(tmp_path, messages):
    fresh = tmp_path / "ledgerflow.pot"
    fresh.write_text(ex._render(ex.build_pot(messages)), encoding="utf-8")
    extracted = {e.msgid for e in polib.pofile(str(fresh))}
    committed = {e.msgid for e in polib.pofile(str(ex.POT_PATH))}
    added, removed = sorted(extracted - committed), sorted(committed - extracted)
    assert not added and not removed, (
        f"resources/translations/ledgerflow.pot is out of date with the code; {FIX}.\n"
        f"  new in code: {added}\n  gone from code: {removed}")
    po_ids = {e.msgid for e in polib.pofile(str(PO_PATH)) if not e.obsolete}
    assert po_ids == extracted, f"{LANG}/ledgerflow.po is not merged with the .pot; {FIX}"


# ----------------------------------------------------------------------------------------- the extractor itself

def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "engine").mkdir(parents=True)
    (root / "engine" / "tests").mkdir()
    (root / "nodes").mkdir()
    (root / "engine" / "mod.py").write_text(textwrap.dedent('''
        from engine.i18n import N_, tr
        from engine import i18n
        TITLE = N_("Title")
        def f(x, name):
            tr("Hello "
               "{name}", name=name)
            i18n.tr("Qualified")
            tr(x)
            tr(f"bad {x}")
            return tr("Title")
    '''), encoding="utf-8")
    (root / "engine" / "tests" / "test_x.py").write_text('tr("in tests")\n', encoding="utf-8")
    (root / "nodes" / "n.py").write_text(textwrap.dedent('''
        from engine.sdk import node, Node
        @node("a.b", title=N_("Node title"), category=N_("Cat"))
        class A(Node):
            """First line of the doc.

            More details, not extracted.
            """
        class B:
            """Not a node."""
    '''), encoding="utf-8")
    return root


def test_extract_messages_on_a_small_tree(tmp_path):
    msgs = ex.extract_messages(_tree(tmp_path))
    assert set(msgs) == {"Title", "Hello {name}", "Qualified", "Node title", "Cat", "First line of the doc."}
    assert msgs["Title"] == [("engine/mod.py", 4), ("engine/mod.py", 11)]
    assert msgs["Hello {name}"] == [("engine/mod.py", 6)]


def test_update_merges_and_obsoletes(tmp_path):
    root = _tree(tmp_path)
    trans = tmp_path / "translations"
    (trans / LANG).mkdir(parents=True)
    old = polib.POFile()
    old.metadata = {"Content-Type": "text/plain; charset=UTF-8"}
    old.append(polib.POEntry(msgid="Title", msgstr="标题"))
    old.append(polib.POEntry(msgid="Removed string", msgstr="已删除"))
    old.save(str(trans / LANG / "ledgerflow.po"))

    _, warnings, changed = ex.update(root, trans)
    assert any("f-string" in w for w in warnings)
    assert trans / "ledgerflow.pot" in changed
    pot_ids = [e.msgid for e in polib.pofile(str(trans / "ledgerflow.pot"))]
    assert pot_ids == sorted(pot_ids)
    po = polib.pofile(str(trans / LANG / "ledgerflow.po"))
    by_id = {e.msgid: e for e in po}
    assert po.metadata["Language"] == LANG
    assert by_id["Title"].msgstr == "标题" and not by_id["Title"].obsolete
    assert by_id["Hello {name}"].msgstr == "" and not by_id["Hello {name}"].obsolete
    assert by_id["Removed string"].obsolete and by_id["Removed string"].msgstr == "已删除"
    assert ("engine/mod.py", "6") in by_id["Hello {name}"].occurrences

    before = (trans / LANG / "ledgerflow.po").read_text(encoding="utf-8")
    assert ex.update(root, trans)[2] == []  # stable: a second run changes nothing
    assert (trans / LANG / "ledgerflow.po").read_text(encoding="utf-8") == before


def test_check_catalog_reports_problems(tmp_path):
    root = _tree(tmp_path)
    trans = tmp_path / "translations"
    ex.update(root, trans)
    path = trans / LANG / "ledgerflow.po"
    po = polib.pofile(str(path))
    for e in po:
        e.msgstr = {"Hello {name}": "你好 {nom}"}.get(e.msgid, "译文")
    po.find("Qualified").msgstr = ""
    po.save(str(path))
    problems = ex.check_catalog(LANG, root, trans)
    assert len(problems) == 2
    assert any("placeholders differ" in p and "Hello {name}" in p for p in problems)
    assert any("untranslated" in p and "Qualified" in p for p in problems)


def test_placeholders():
    assert ex.placeholders("{b} and {a!r} at {n:.0f}") == ["{a!r}", "{b}", "{n:.0f}"]
    assert ex.placeholders("literal {{braces}}") == []
