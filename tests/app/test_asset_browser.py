"""The Assets panel on real Qt (offscreen) over a real embedded asset center with several users: listing,
filters, details with lineage and stage history, maker-checker refusal for the author, promotion by an approver,
a viewer refused, download; and the connection dialog's test against the embedded store."""
from __future__ import annotations

import pytest

from app.asset_browser import AssetBrowser, PromoteDialog
from app.asset_settings import AssetSettingsDialog
from assetcenter.connection import EmbeddedAssets, keyring_status
from assetcenter.home import AssetHome
from assetcenter.local import open_embedded
from assetcenter.service import AssetCenter


@pytest.fixture(scope="module")
def center(tmp_path_factory):
    """ana publishes (analyst, and approver too: only maker-checker stops her), bob approves, vic views."""
    home = tmp_path_factory.mktemp("assets") / "ac"
    center, admin = open_embedded(home)
    users = {}
    for name, roles in (("ana", ("analyst", "approver")), ("bob", ("approver",)), ("vic", ("viewer",))):
        user_id = center.create_user(admin, name)
        for role in roles:
            center.grant(admin, name, role, "credit")
        users[name] = center.accounts.principal(user_id)
    ana = users["ana"]
    center.publish(ana, project="credit", kind="dataset", name="loans", chunks=[b"v1 rows"], tags=["retail"],
                   description="Loan book")
    center.publish(ana, project="credit", kind="dataset", name="loans", chunks=[b"v2 rows"], description="Loan book")
    center.publish(ana, project="credit", kind="model_package", name="pd-model", chunks=[b"package bytes"],
                   description="Probability of default", metadata={"label": "default"},
                   lineage=[("trained_on", "dataset", "credit/loans@2"), ("published_by", "run", "run-1")])
    yield home, users
    center.close()


def _browser(qtbot, home, principal) -> AssetBrowser:
    browser = AssetBrowser(lambda: EmbeddedAssets(AssetCenter(AssetHome(home)), principal))
    qtbot.addWidget(browser)
    browser.resize(1200, 700)
    browser.show()  # the first show loads
    qtbot.waitUntil(lambda: browser.loaded, timeout=5000)
    assert browser.wait()
    return browser


def _promote_with_dialog(browser: AssetBrowser, stage: str, comment: str) -> None:
    """Click Promote… and answer the real dialog programmatically."""
    def answer(version):
        dialog = PromoteDialog(version, browser)
        ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
        assert not ok.isEnabled()  # a comment is required
        dialog.choose(stage, comment)
        assert ok.isEnabled()
        return dialog.values()
    browser.ask_promotion = answer
    browser.promote_button.click()
    assert browser.wait()


def test_empty_store_explains_how_to_publish(qtbot, tmp_path):
    home = tmp_path / "empty"
    _, admin = open_embedded(home)
    browser = _browser(qtbot, home, admin)
    assert browser.shown_refs() == [] and "Publish asset node" in browser.empty_text()
    assert "admin" in browser.connection_label.toolTip()


def test_lists_latest_versions_and_filters(qtbot, center):
    home, users = center
    browser = _browser(qtbot, home, users["vic"])
    assert browser.last_error == ""
    assert sorted(browser.shown_refs()) == ["credit/loans@2", "credit/pd-model@1"]
    browser.kind_box.setCurrentIndex(browser.kind_box.findData("model_package"))
    assert browser.wait() and browser.shown_refs() == ["credit/pd-model@1"]
    browser.kind_box.setCurrentIndex(0)
    browser.search.setText("loan")
    assert browser.wait() and browser.shown_refs() == ["credit/loans@2"]
    browser.search.setText("nothing-like-this")
    assert browser.wait() and browser.shown_refs() == [] and "No asset matches" in browser.empty_text()
    browser.search.clear()
    browser.stage_box.setCurrentIndex(browser.stage_box.findData("candidate"))
    assert browser.wait() and browser.shown_refs() == ["credit/pd-model@1"]


def test_versions_and_details(qtbot, center):
    home, users = center
    browser = _browser(qtbot, home, users["vic"])
    assert browser.select_asset("credit/loans")
    assert browser.wait()
    assert [v["version"] for v in browser._versions] == [2, 1]
    browser.select_version(1)
    assert browser.wait()
    assert "Loan book" in browser.details.toPlainText() and "retail" in browser.details.toPlainText()
    assert browser.select_asset("credit/pd-model") and browser.wait()
    assert "Probability of default" in browser.details.toPlainText()
    assert any("trained_on" in t and "credit/loans@2" in t for t in browser.lineage_texts())
    # the graph: the run on the left, the dataset, and this version they flow into
    assert browser.lineage_graph.boxes == ["credit/pd-model@1", "run-1", "credit/loans@2"]
    assert [(h["to"], h["by"]) for h in browser.history_rows()] == [("candidate", "ana")]
    assert browser.download_button.isEnabled()


def test_author_is_refused_approver_promotes_viewer_cannot(qtbot, center, tmp_path):
    home, users = center
    author = _browser(qtbot, home, users["ana"])
    assert author.select_asset("credit/pd-model") and author.wait()
    _promote_with_dialog(author, "validated", "backtest passed")
    assert "Maker-checker" in author.last_error
    viewer = _browser(qtbot, home, users["vic"])
    assert viewer.select_asset("credit/pd-model") and viewer.wait()
    _promote_with_dialog(viewer, "validated", "looks fine")
    assert "lacks permission stage.approve" in viewer.last_error
    approver = _browser(qtbot, home, users["bob"])
    assert approver.select_asset("credit/pd-model") and approver.wait()
    _promote_with_dialog(approver, "validated", "independent validation MV-12")
    assert approver.last_error == "" and "validated" in approver.message.text()
    assert approver.wait()
    assert approver.selected_version()["stage"] == "validated"
    history = approver.history_rows()
    assert (history[-1]["to"], history[-1]["by"], history[-1]["comment"]) == \
        ("validated", "bob", "independent validation MV-12")
    target = tmp_path / "pd-model.tar"
    approver.ask_save_path = lambda version: target
    approver.download_button.click()
    assert approver.wait() and target.read_bytes() == b"package bytes"


def test_connection_dialog_tests_the_embedded_store(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGERFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("LEDGERFLOW_ASSETCENTER_HOME", str(tmp_path / "ac"))
    monkeypatch.delenv("LEDGERFLOW_ASSETCENTER_URL", raising=False)
    monkeypatch.delenv("LEDGERFLOW_TOKEN", raising=False)
    dialog = AssetSettingsDialog()
    qtbot.addWidget(dialog)
    dialog.test_connection()
    assert dialog.wait()
    assert "Connected to the embedded store" in dialog.result.text() and "*: admin" in dialog.result.text()
    if keyring_status() is None:
        pytest.skip("a working OS keyring is present; the no-keyring path cannot be shown here")
    dialog.url.setText("https://assets.bank.example")
    dialog.token.setText("abc.def")
    dialog.save()
    assert not dialog.saved and "keyring" in dialog.result.text()
    assert not (tmp_path / "assetcenter.json").exists()  # nothing half-saved, and never the token


def test_connection_dialog_saves_the_shared_label_database_without_a_password(qtbot, tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("LEDGERFLOW_HOME", str(tmp_path))
    for name in ("LEDGERFLOW_ASSETCENTER_HOME", "LEDGERFLOW_ASSETCENTER_URL", "LEDGERFLOW_TOKEN",
                 "LEDGERFLOW_LABELS_URL"):
        monkeypatch.delenv(name, raising=False)
    dialog = AssetSettingsDialog()
    qtbot.addWidget(dialog)
    dialog.labels_url.setText("postgresql://labeler:hunter2@db.bank.example/labels")
    dialog.save()
    assert not dialog.saved and "password" in dialog.result.text()
    assert not (tmp_path / "assetcenter.json").exists()
    dialog.labels_url.setText("postgresql+psycopg://labeler@db.bank.example/labels")
    dialog.save()
    assert dialog.saved
    saved = json.loads((tmp_path / "assetcenter.json").read_text("utf-8"))
    assert saved["labels_url"] == "postgresql+psycopg://labeler@db.bank.example/labels"
    reopened = AssetSettingsDialog()
    qtbot.addWidget(reopened)
    assert reopened.labels_url.text() == saved["labels_url"]


def test_window_dock_connects_only_when_shown(qtbot, tmp_path, monkeypatch):
    from workbench import close, make_window

    home = tmp_path / "ac"
    monkeypatch.setenv("LEDGERFLOW_ASSETCENTER_HOME", str(home))
    monkeypatch.delenv("LEDGERFLOW_ASSETCENTER_URL", raising=False)
    monkeypatch.delenv("LEDGERFLOW_TOKEN", raising=False)
    window = make_window(qtbot)
    qtbot.wait(50)
    assert not home.exists()  # opening the app creates no asset center
    assert window.assets_dock.toggleViewAction() in window.menuBar().actions()[3].menu().actions()
    assert any(a.text() == "&Asset center connection…" for a in window.menuBar().actions()[4].menu().actions())
    window.assets_dock.raise_()
    qtbot.waitUntil(lambda: window.asset_browser.connection_label.text() != "Not connected yet", timeout=20_000)
    assert window.asset_browser.wait() and home.exists()
    assert "Publish asset node" in window.asset_browser.empty_text()
    close(window)
