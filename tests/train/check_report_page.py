"""check_report_page.py: report.html as a browser shows it. Trains a 1-epoch cnn-micro and vit-micro
run with the real train program, then loads each report.html in headless Chromium (Debian's
chromium): a screenshot must come out as a PNG of the window's size, and the page must raise no
error: a copy of the page gets a recorder script first in its <head> that catches every error event
(script errors and resources that fail to load, in the capture phase) and console.error, and writes
them into the DOM, which --dump-dom returns. Case "planted": a page with a planted script error must
be caught (the check can fail). Exits 77 (CTest's skip) when chromium is not installed.

usage: check_report_page.py TRAIN_BINARY (pages|planted) [SCREENSHOT_DIR]"""
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from program_checks import fail, make_images  # noqa: E402

WIDTH, HEIGHT = 1280, 2400
RECORDER = """<script>window.__errors = [];
addEventListener('error', function (e) {
  var t = e.target;
  __errors.push(e.message ? e.message : 'failed to load ' + (t && (t.src || t.href || t.tagName)));
}, true);
var __console_error = console.error;
console.error = function () { __errors.push('console.error: ' + Array.from(arguments).join(' '));
                              __console_error.apply(console, arguments); };
addEventListener('load', function () {
  document.documentElement.setAttribute('data-page-errors', JSON.stringify(__errors));
});</script>"""


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    print("SKIP: chromium is not installed (scripts/setup.sh installs it)")
    sys.exit(77)


def browse(browser, page, *flags):
    # Its own profile each time; no sandbox (containers, root) and no GPU (none headless).
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        return subprocess.run([browser, "--headless", "--disable-gpu", "--no-sandbox",
                               "--hide-scrollbars", "--user-data-dir=" + profile,
                               "--virtual-time-budget=5000", *flags, "file://" + page],
                              capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def page_errors(browser, page):
    """The errors the page raised while loading, as the recorder wrote them; None if it did not run."""
    with open(page, encoding="utf-8") as f:
        html = f.read()
    probe = page + ".probe.html"
    with open(probe, "w", encoding="utf-8") as f:
        f.write(html.replace("<head>", "<head>" + RECORDER, 1))
    dom = browse(browser, probe, "--dump-dom").stdout
    os.remove(probe)
    m = re.search(r'data-page-errors="([^"]*)"', dom)
    if not m:
        return None
    return m.group(1).replace("&quot;", '"')


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def check_page(browser, page, screenshot):
    """Fails with a message unless the page screenshots and raises no error."""
    html = open(page, encoding="utf-8").read()
    # Self-contained: nothing fetched from elsewhere.
    external = re.findall(r"""(?:src|href)\s*=\s*['"]?(?:https?:)?//""", html)
    if external or "<link" in html:
        fail("%s fetches from outside: %s" % (page, external or "<link>"))
    errors = page_errors(browser, page)
    if errors is None:
        fail("the error recorder did not run on %s (chromium's --dump-dom gave no result)" % page)
    if errors != "[]":
        fail("%s raised errors in chromium: %s" % (page, errors))
    browse(browser, page, "--screenshot=" + screenshot, "--window-size=%d,%d" % (WIDTH, HEIGHT))
    if not os.path.exists(screenshot) or os.path.getsize(screenshot) < 10000:
        fail("no screenshot (or an almost empty one) of %s at %s" % (page, screenshot))
    if png_size(screenshot) != (WIDTH, HEIGHT):
        fail("the screenshot of %s is %s, not %dx%d" % (page, png_size(screenshot), WIDTH, HEIGHT))


def train_page(train, work, model):
    run = os.path.join(work, model)
    r = subprocess.run([train, "--model", model, "--data", os.path.join(work, "data"),
                        "--img-size", "20", "--epochs", "1", "-b", "8", "--lr", "3e-3",
                        "--warmup-epochs", "0.5", "-j", "1", "--output", run],
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail("train --model %s failed (%d): %s" % (model, r.returncode, r.stderr[-2000:]))
    return os.path.join(run, "report.html")


def main():
    train, case = sys.argv[1], sys.argv[2]
    shots = sys.argv[3] if len(sys.argv) > 3 else None
    browser = chromium()
    with tempfile.TemporaryDirectory(prefix="report-page-") as work:
        make_images(os.path.join(work, "data"), 12)
        if case == "pages":
            if shots:
                os.makedirs(shots, exist_ok=True)
            for model in ("cnn-micro", "vit-micro"):
                page = train_page(train, work, model)
                shot = os.path.join(shots or work, "report-%s.png" % model)
                check_page(browser, page, shot)
                print("ok: %s: no errors, screenshot %s" % (model, shot))
        elif case == "planted":
            # A script error, and an image that does not decode: both must be caught.
            for body, sign in (("<script>undefined_function_planted();</script>",
                                "undefined_function_planted"),
                               ("<img src='data:image/png;base64,AAAA'>", "failed to load")):
                page = os.path.join(work, "planted.html")
                with open(page, "w") as f:
                    f.write("<!DOCTYPE html><html><head><title>t</title></head><body><p>text</p>"
                            + body + "</body></html>")
                errors = page_errors(browser, page)
                if errors is None or sign not in errors:
                    fail("the planted error (%s) was not caught (recorded: %s)" % (body, errors))
                print("ok: the planted error was caught: " + errors)
        else:
            fail("unknown case " + case)


if __name__ == "__main__":
    main()
