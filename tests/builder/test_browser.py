"""The builder in a real browser: Debian's Chromium driven by Playwright (no downloaded browser).

A user builds the demo experiment by drag and drop, sees a validation error, fixes it, saves,
imports, and runs the saved experiment with fast_dev_run from the page.
"""

import os
from pathlib import Path

import pytest
from builder_support import builder_fixture  # noqa: F401  (fixtures)

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium (.ci/run installs it)"
)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install eisen-lightning[builder-test]")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, builder, request, tmp_path):
    context = browser.new_context(viewport={"width": 1500, "height": 950})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    host = f"http://127.0.0.1:{builder.server_address[1]}/"
    page.route(
        "**/*", lambda route: route.continue_() if route.request.url.startswith(host) else route.abort()
    )
    page.goto(builder.url)
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    failures = request.session.testsfailed
    yield page
    if request.session.testsfailed > failures:  # the call's report is counted before teardown
        folder = Path(os.environ.get("BUILDER_SCREENSHOTS", tmp_path))
        folder.mkdir(parents=True, exist_ok=True)
        shot = folder / f"{request.node.name}.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failed page: {shot}")
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _drag(page, component_id):
    page.drag_and_drop(
        f'#palette .item[data-id="{component_id}"]', "#canvas", target_position={"x": 300, "y": 200}
    )


def test_build_validate_fix_save_import_and_dry_run(page, builder):
    from playwright.sync_api import expect

    _drag(page, "data/demo")
    _drag(page, "net/unet3d_small")
    page.focus('#palette .item[data-id="task/segmentation"]')
    page.keyboard.press("Enter")
    expect(page.locator('.slot[data-group="task"] .node[data-key="metric:dice"]')).to_be_visible()
    _drag(page, "loss/mse")
    expect(page.locator("#status")).to_contain_text("is for regression")
    page.click('#palette .item[data-id="loss/dice_ce"] button')
    _drag(page, "net/vnet")
    expect(page.locator("#status")).to_contain_text("only one net")
    expect(page.locator('.node[data-key="loss"]')).to_contain_text("dice_ce")

    page.click('.node[data-key="net"]')
    page.fill('#inspector input[data-field="channels"]', "[8, 16, 32, 64")
    page.click("#validate")
    expect(page.locator('#inspector .field-error[data-for="channels"]')).to_contain_text("must be a list")
    expect(page.locator('.node[data-key="net"]')).to_have_class("node selected invalid")
    expect(page.locator("#errors li").first).to_contain_text("net › channels")

    page.fill('#inspector input[data-field="channels"]', "[8, 16, 32, 64]")
    page.click('.node[data-key="trainer"]')
    page.select_option('#inspector select[data-field="precision"]', label="32-true")
    page.fill("#name", "browser_demo")
    page.click("#validate")
    expect(page.locator("#status")).to_have_text("valid")
    expect(page.locator("#yaml")).to_contain_text("override /net: unet3d_small")
    expect(page.locator("#command")).to_have_text(
        f"python train.py --config-dir {builder.config_dir} +experiment=browser_demo"
    )

    page.click("#save")
    expect(page.locator("#status")).to_contain_text("saved")
    saved = (builder.config_dir / "experiment" / "browser_demo.yaml").read_text()
    assert "precision: 32-true" in saved and "- 8" in saved

    expect(page.locator('#import-select option[value="browser_demo"]')).to_have_count(1)  # list refreshed
    page.select_option("#import-select", "decathlon")
    page.click("#import")
    expect(page.locator('.node[data-key="data"]')).to_contain_text("decathlon")
    expect(page.locator("#name")).to_have_value("decathlon_copy")
    page.select_option("#import-select", "browser_demo")
    page.click("#import")
    expect(page.locator("#name")).to_have_value("browser_demo")
    page.click('.node[data-key="net"]')
    expect(page.locator('#inspector input[data-field="channels"]')).to_have_value("[8,16,32,64]")

    page.click("#dry-run")
    expect(page.locator("#run-state")).to_have_text("finished (exit 0)", timeout=180_000)
    expect(page.locator("#metrics")).to_contain_text("val/dice")
    expect(page.locator("#log")).to_contain_text("training finished")


def _transform_order(page):
    return page.locator('.slot[data-group="transforms"] ol.ordered .node').evaluate_all(
        "nodes => nodes.map((n) => n.dataset.key.split(':')[1])"
    )


def test_transforms_are_added_reordered_saved_and_imported_in_order(page, builder):
    from playwright.sync_api import expect

    for component in ("data/demo", "net/unet3d_small", "task/segmentation", "loss/dice_ce"):
        page.click(f'#palette .item[data-id="{component}"] button')
    _drag(page, "transforms/rand_affine")
    page.click('#palette .item[data-id="transforms/rand_gaussian_noise"] button')
    page.click('#palette .item[data-id="transforms/rand_bias_field"] button')
    assert _transform_order(page) == ["rand_affine", "rand_gaussian_noise", "rand_bias_field"]
    expect(page.locator('.node[data-key="transforms:rand_affine"] button.up')).to_be_disabled()

    page.drag_and_drop(
        '.node[data-key="transforms:rand_bias_field"]', '.node[data-key="transforms:rand_affine"]'
    )
    assert _transform_order(page) == ["rand_bias_field", "rand_affine", "rand_gaussian_noise"]
    page.click('.node[data-key="transforms:rand_affine"] button.down')
    expect(page.locator("#status")).to_contain_text("rand_affine moved to position 3 of 3")
    assert _transform_order(page) == ["rand_bias_field", "rand_gaussian_noise", "rand_affine"]
    page.focus('.node[data-key="transforms:rand_gaussian_noise"]')
    page.keyboard.press("Alt+ArrowUp")
    assert _transform_order(page) == ["rand_gaussian_noise", "rand_bias_field", "rand_affine"]
    page.click('.node[data-key="transforms:rand_bias_field"] .remove')
    page.click('.node[data-key="transforms:rand_affine"] button.up')
    assert _transform_order(page) == ["rand_affine", "rand_gaussian_noise"]

    page.fill("#name", "browser_augmented")
    page.click("#validate")
    expect(page.locator("#status")).to_have_text("valid")
    expect(page.locator("#yaml")).to_contain_text("override /transforms: [rand_affine, rand_gaussian_noise]")
    page.click("#save")
    expect(page.locator("#status")).to_contain_text("saved")
    saved = (builder.config_dir / "experiment" / "browser_augmented.yaml").read_text()
    assert "  - override /transforms: [rand_affine, rand_gaussian_noise]\n" in saved

    page.click("#new")
    assert _transform_order(page) == []
    expect(page.locator('#import-select option[value="browser_augmented"]')).to_have_count(1)
    page.select_option("#import-select", "browser_augmented")
    page.click("#import")
    expect(page.locator('.node[data-key="transforms:rand_affine"]')).to_be_visible()
    assert _transform_order(page) == ["rand_affine", "rand_gaussian_noise"]

    for key in ("task", "loss", "net"):
        page.click(f'.node[data-key="{key}"] .remove')
    page.click('#palette .item[data-id="task/classification"] button')
    expect(page.locator("#status")).to_contain_text("transform rand_affine is a spatial augmentation")
    page.click('.node[data-key="transforms:rand_affine"] .remove')
    page.click('#palette .item[data-id="task/classification"] button')
    page.click('#palette .item[data-id="transforms/rand_elastic_3d"] button')
    expect(page.locator("#status")).to_contain_text("transform rand_elastic_3d is a spatial augmentation")
    assert _transform_order(page) == ["rand_gaussian_noise"]
