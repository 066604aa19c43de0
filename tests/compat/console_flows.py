"""The web console in a real browser: Selenium drives Debian's headless chromium (through
chromium-driver) against `millrace up`, as an analyst would use it.

1. The overview lists the pipeline's stages; with the page open, boto3 puts the shared Telco
   rows into the stream and the stream stage's record count changes on the page without a
   reload (server-sent events and the console's script).
2. From the streams list, the stream's page shows its shards; "newest records" of a shard shows
   records decoded as JSON, each one a row boto3 put (its customerID among those sent).
3. The lake: from the nav, down the delivery's folders to an object, whose preview is a table
   of the rows sent (customerID among them).
   Then SQL: a GROUP BY typed into the SQL box over the delivery's table shows the counts of
   the rows sent by Contract, and its CSV download holds the same rows. Then "Profile this
   folder" with Churn as the target: the report page refreshes itself until the report is
   done, then shows the rows sent and the report itself in a frame. Then "Train a model on
   this folder" (Churn, metric auc, best mode for 10 s): the training's page fills its
   leaderboard in while open (no reload), best first, and links to the version it saved.
4. The model page: a model trained on Telco rows before `up` started; its threshold slider,
   moved with the keyboard, turns the confusion matrix into the counts at the lowest cut (every
   test row positive) and the highest, and the counts always add up to the test part.
   From there, "Predict": the what-if form (one labelled field per input) shows a prediction
   with every column's contribution; choosing another Contract updates the prediction, its
   contribution row and the page's address without a reload, and the probability shown is the
   one `millrace predict` gives for that record (the page's address holds it). A CSV of Telco
   rows uploaded in the batch form comes back as a downloaded CSV with one prediction per row,
   equal to `millrace predict`'s for the same file. The what-if round trip (choose a value →
   the new contributions shown) is timed over 20 changes and printed. "Promote" on the
   model page makes v1 the production version (the same-origin post the console accepts).
5. Keyboard: the skip link and the navigation are reachable with Tab and labelled.
6. A phone-sized window reads the same pages without horizontal scrolling of the page itself.
7. Sign-in, under `[auth] mode = "enforce"`: a page sends to the sign-in form; the access key
   `millrace identity add` printed signs in (the session cookie HttpOnly and SameSite=Strict,
   unreadable by the page's script); a page the identity's policy does not allow is refused
   naming the action; Sign out ends the session.
8. An S3 lake (moto's S3 server): the delivery's s3:// location listed at the lake's top,
   browsed to an NDJSON and a Parquet object whose previews hold the rows put; other buckets,
   prefixes and `..` are not found.
9. The example pipeline (examples/millrace.toml on free ports): every Telco row put with
   boto3, and the overview, left open, shows all seven stages running (delivered, prepared,
   trained, served, scored).

Screenshots of each page go to --shots (README shows them).

Usage: console_flows.py --millrace BIN --csv telco.csv --shots DIR
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from urllib.parse import parse_qsl, urlparse

import boto3
from botocore.config import Config
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from flowkit import Checks, err_text, note

ROWS = 300


def start_up(binary, tmp, extra="", lake="lake", head=""):
    """Starts `up` in tmp: a 2-shard stream delivered into `lake`, the console, then `extra`
    (`head` goes first: a [lake] table before the arrays of tables)."""
    cfg = os.path.join(tmp, "millrace.toml")
    with open(cfg, "w") as f:
        f.write(
            head
            + '[server]\nkinesis_addr = "127.0.0.1:0"\nadmin_addr = "127.0.0.1:0"\n'
            '[[stream]]\nname = "churn"\nshards = 2\n'
            f'[[delivery]]\nname = "raw"\nstream = "churn"\nlake = "{lake}"\nprefix = "raw/"\n'
            'buffer_interval_secs = 0\nformat = "ndjson"\n'
            '[console]\naddr = "127.0.0.1:0"\n' + extra
        )
    return launch(binary, tmp, cfg)


def launch(binary, tmp, cfg):
    """`millrace up -c cfg` with its data dir in tmp: the process and the Kinesis API's and the
    console's URLs, as it prints them."""
    log = open(os.path.join(tmp, "up.log"), "w")
    p = subprocess.Popen(
        [binary, "--data-dir", os.path.join(tmp, "data"), "up", "-c", cfg],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    urls = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(urls) < 2:
        line = p.stdout.readline()
        if not line:
            break
        for word in line.split():
            for name in ("kinesis", "console"):
                if word.startswith(name + "="):
                    urls[name] = word.split("=", 1)[1]
    if len(urls) < 2:
        p.kill()
        raise RuntimeError(f"millrace up did not print its addresses: {urls}")
    return p, urls


def stop(driver, up):
    """Closes the browser and stops `up` (SIGTERM, then SIGKILL after 30 s); either may be None."""
    if driver is not None:
        driver.quit()
    if up is not None:
        up.terminate()
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            up.kill()


def browser(width, height, downloads=None):
    options = Options()
    if downloads:
        options.add_experimental_option(
            "prefs",
            {"download.default_directory": downloads, "download.prompt_for_download": False},
        )
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    chromium = os.environ.get("MILLRACE_CHROMIUM") or "/usr/bin/chromium"
    options.binary_location = chromium
    driver = os.environ.get("MILLRACE_CHROMEDRIVER") or "/usr/bin/chromedriver"
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def put_rows(kinesis_url, rows):
    client = boto3.client(
        "kinesis",
        endpoint_url=kinesis_url,
        region_name="us-east-1",
        aws_access_key_id="t",
        aws_secret_access_key="t",
        config=Config(retries={"max_attempts": 2}),
    )
    for i in range(0, len(rows), 100):
        batch = rows[i : i + 100]
        out = client.put_records(
            StreamName="churn",
            Records=[
                {"Data": json.dumps(r).encode(), "PartitionKey": r["customerID"]} for r in batch
            ],
        )
        if out["FailedRecordCount"]:
            raise RuntimeError(f"{out['FailedRecordCount']} records failed")


def head(src, dst, rows):
    """The header and first `rows` rows of the CSV `src`, written to `dst` (returned)."""
    with open(src, newline="") as f, open(dst, "w", newline="") as out:
        for i, line in enumerate(f):
            if i > rows:
                break
            out.write(line)
    return dst


def wait_download(folder, name, problems, seconds=30):
    """The path of the downloaded file `name` once the browser has finished it, or None with
    the folder's contents added to `problems`."""
    path = os.path.join(folder, name)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not os.path.exists(path):
        time.sleep(0.2)
    if os.path.exists(path):
        return path
    problems.append(f"no download; folder holds {os.listdir(folder)}")
    return None


def stream_detail(driver):
    """The overview's stream line up to its record count (the rates follow it)."""
    text = driver.find_element(By.CSS_SELECTOR, '#row-stream [data-field="detail"]').text
    return ", ".join(text.split(", ")[:2])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--millrace", required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--shots", required=True)
    args = ap.parse_args()
    os.makedirs(args.shots, exist_ok=True)
    ck = Checks("console")
    with open(args.csv, newline="") as f:
        rows = list(csv.DictReader(f))[:ROWS]
    sent_ids = {r["customerID"] for r in rows}
    tmp = tempfile.mkdtemp(prefix="millrace-console-")
    train_csv = head(args.csv, os.path.join(tmp, "train.csv"), 1000)
    subprocess.run(
        [args.millrace, "--data-dir", os.path.join(tmp, "data"), "train", "--data", train_csv,
         "--target", "Churn", "--name", "churn"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    up, urls = start_up(args.millrace, tmp)
    console = urls["console"]
    driver = None
    try:
        downloads = os.path.join(tmp, "downloads")
        os.makedirs(downloads)
        driver = browser(1280, 900, downloads)
        wait = WebDriverWait(driver, 20)

        # 1. Live overview.
        driver.get(console + "/")
        before = stream_detail(driver)
        ck.check(
            "overview: seven stages, the stream running with no records yet",
            []
            if len(driver.find_elements(By.CSS_SELECTOR, "table.stages tbody tr")) == 7
            and before == "1 stream, 0 records"
            else [f"stream detail {before!r}"],
        )
        put_rows(urls["kinesis"], rows)
        want = f"1 stream, {ROWS} records"
        try:
            wait.until(lambda d: stream_detail(d) == want)
            live = []
        except Exception as exc:  # noqa: BLE001 - reported as a failed check
            live = [f"still {stream_detail(driver)!r} ({err_text(exc)})"]
        ck.check(f"overview: the count turns to {ROWS} records without a reload", live)
        note_text = driver.find_element(By.ID, "live-note").text
        ck.expect(note_text.startswith("Live:"), "overview: says it is live")
        box_class = driver.find_element(By.ID, "box-stream").get_attribute("class")
        ck.expect("running" in box_class, "overview: the diagram's stream box is running")
        driver.save_screenshot(os.path.join(args.shots, "overview.png"))

        # 2. Streams → stream → newest records.
        driver.find_element(By.LINK_TEXT, "Streams").click()
        wait.until(ec.presence_of_element_located((By.LINK_TEXT, "churn")))
        cells = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "tbody tr td")]
        ck.check(
            "streams: churn with 2 open shards and every record",
            [] if str(ROWS) in cells and "2" in cells else [f"cells {cells}"],
        )
        driver.save_screenshot(os.path.join(args.shots, "streams.png"))
        driver.find_element(By.LINK_TEXT, "churn").click()
        wait.until(ec.presence_of_element_located((By.LINK_TEXT, "newest records")))
        driver.find_elements(By.LINK_TEXT, "newest records")[0].click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "ol.records pre.json")))
        problems = []
        shown = driver.find_elements(By.CSS_SELECTOR, "ol.records pre.json")
        for pre in shown:
            try:
                rec = json.loads(pre.text)
            except ValueError as exc:
                problems.append(f"not JSON: {exc}")
                continue
            if rec.get("customerID") not in sent_ids:
                problems.append(f"unknown record {rec.get('customerID')}")
        if len(shown) != 20:
            problems.append(f"{len(shown)} records shown, not the default 20")
        ck.check("record browser: the newest 20 records, decoded, each one sent", problems)
        field = driver.find_element(By.ID, "last")
        label = driver.find_element(By.CSS_SELECTOR, 'label[for="last"]').text
        field.clear()
        field.send_keys("5", Keys.ENTER)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "ol.records li")) == 5)
        ck.expect(label == "Records", "record browser: the count field is labelled and works")
        driver.save_screenshot(os.path.join(args.shots, "records.png"))

        # 3. The lake, down to an object.
        driver.find_element(By.LINK_TEXT, "Lake").click()
        wait.until(ec.presence_of_element_located((By.LINK_TEXT, "raw/"))).click()
        problems = []
        for _ in range(8):
            links = driver.find_elements(By.CSS_SELECTOR, "tbody th a")
            if not links:
                problems.append("an empty folder")
                break
            folder = links[0].text.endswith("/")
            links[0].click()
            if not folder:
                break
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "table.preview")))
        heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "table.preview th")]
        if "customerID" not in heads:
            problems.append(f"columns {heads}")
        else:
            at = heads.index("customerID")
            for tr in driver.find_elements(By.CSS_SELECTOR, "table.preview tbody tr"):
                cid = tr.find_elements(By.TAG_NAME, "td")[at].text
                if cid not in sent_ids:
                    problems.append(f"unknown row {cid}")
        ck.check("lake: down the delivery's folders to an object previewed as the rows sent", problems)
        driver.save_screenshot(os.path.join(args.shots, "lake-object.png"))

        # 3b. SQL over the delivery's table: the rows are the counts of the rows sent, and the
        # CSV download holds the same.
        driver.find_element(By.LINK_TEXT, "SQL").click()
        wait.until(ec.presence_of_element_located((By.ID, "q")))
        label = driver.find_element(By.CSS_SELECTOR, 'label[for="q"]').text
        want = {}
        for r in rows:
            want[r["Contract"]] = want.get(r["Contract"], 0) + 1
        want = sorted(want.items())
        # The delivery may still be writing the last rows: run again until they are all in.
        deadline = time.monotonic() + 20
        while True:
            box = driver.find_element(By.ID, "q")
            box.clear()
            box.send_keys(
                "SELECT Contract, count(*) AS n FROM raw GROUP BY Contract ORDER BY Contract")
            run = driver.find_element(By.CSS_SELECTOR, "form.sql button")
            run.click()
            wait.until(ec.staleness_of(run))
            wait.until(lambda d: d.find_elements(By.ID, "result")
                       or d.find_elements(By.CSS_SELECTOR, "p.problem"))
            refused = [p.text for p in driver.find_elements(By.CSS_SELECTOR, "p.problem")]
            got = [
                tuple(td.text for td in tr.find_elements(By.TAG_NAME, "td"))
                for tr in driver.find_elements(By.CSS_SELECTOR, "#result tbody tr")
            ]
            got = refused or [(c, int(n)) for c, n in got]
            if got == want or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        problems = [] if got == want else [f"rows {got}, want {want}"]
        if not label.startswith("Query"):
            problems.append(f"the box is labelled {label!r}")
        ck.check("sql: a query typed in the box shows the counts of the rows sent", problems)
        driver.save_screenshot(os.path.join(args.shots, "sql.png"))
        driver.find_element(By.LINK_TEXT, "CSV").click()
        problems = []
        got_csv = wait_download(downloads, "query.csv", problems)
        if got_csv:
            with open(got_csv, newline="") as f:
                back = [(r["Contract"], int(r["n"])) for r in csv.DictReader(f)]
            if back != want:
                problems.append(f"downloaded {back}, want {want}")
        ck.check("sql: the result downloads as a CSV of the same rows", problems)

        # 3c. Data quality: "Profile this folder" on the delivery's folder, with Churn as the
        # target; the page refreshes itself until the report is in, then shows it in place.
        driver.get(console + "/lake?prefix=raw%2F")
        driver.find_element(By.LINK_TEXT, "Profile this folder").click()
        target = Select(wait.until(ec.presence_of_element_located((By.ID, "target"))))
        target.select_by_visible_text("Churn")
        driver.find_element(By.CSS_SELECTOR, "form button").click()
        problems = []
        try:
            # The page refreshes itself while the report runs: an element read as it reloads
            # is stale, and is read again.
            WebDriverWait(driver, 60, ignored_exceptions=(StaleElementReferenceException,)).until(
                lambda d: d.find_element(By.CSS_SELECTOR, "#state .state").text in ("done", "failed"))
            state = driver.find_element(By.CSS_SELECTOR, "#state .state").text
            if state != "done":
                problems.append(f"the report {state}: {driver.find_element(By.TAG_NAME, 'main').text}")
            else:
                summary = driver.find_element(By.ID, "summary").text
                if not summary.startswith(f"{ROWS} rows"):
                    problems.append(f"summary {summary!r}, not {ROWS} rows")
                frame = driver.find_element(By.CSS_SELECTOR, "iframe.report")
                driver.switch_to.frame(frame)
                body = driver.find_element(By.TAG_NAME, "body").text
                driver.switch_to.default_content()
                if "Churn" not in body:
                    problems.append("the report in the frame does not name the target")
        except Exception as exc:  # noqa: BLE001 - reported as a failed check
            problems.append(err_text(exc))
        ck.check("data quality: a folder profiled from the lake, its report read in place", problems)
        driver.save_screenshot(os.path.join(args.shots, "quality.png"))

        # 3d. Training: "Train a model on this folder" on the delivery's folder, best mode for
        # the shortest budget, so the leaderboard has time to fill in while the page is open.
        driver.get(console + "/lake?prefix=raw%2F")
        driver.find_element(By.LINK_TEXT, "Train a model on this folder").click()
        target = Select(wait.until(ec.presence_of_element_located((By.ID, "target"))))
        target.select_by_visible_text("Churn")
        name = driver.find_element(By.ID, "name")
        name.clear()
        name.send_keys("churn-console")
        Select(driver.find_element(By.ID, "objective")).select_by_value("auc")
        driver.find_element(By.CSS_SELECTOR, 'input[name="mode"][value="best"]').click()
        budget = driver.find_element(By.ID, "budget_s")
        budget.clear()
        budget.send_keys("10")
        driver.find_element(By.CSS_SELECTOR, "form.train button").click()
        problems = []
        try:
            wait.until(ec.presence_of_element_located((By.ID, "train-progress")))
            driver.execute_script("window.__same_page = true")
            seen = set()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                state = driver.find_element(By.ID, "train-state").text
                seen.add(len(driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")))
                if state in ("done", "failed"):
                    break
                time.sleep(0.2)
            count = driver.find_element(By.ID, "train-count").text
            rows_now = len(driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr"))
            if state != "done":
                problems.append(f"the training {state}: {driver.find_element(By.TAG_NAME, 'main').text}")
            elif not driver.execute_script("return window.__same_page === true"):
                problems.append("the page reloaded instead of updating itself")
            else:
                if len(seen) < 3:
                    problems.append(f"the leaderboard did not fill in while open: sizes {sorted(seen)}")
                if count != f"{rows_now} of {rows_now} cross-validated":
                    problems.append(f"{count!r} with {rows_now} rows in the leaderboard")
                cvs = [float(tr.find_elements(By.TAG_NAME, "td")[1].text)
                       for tr in driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")]
                if cvs != sorted(cvs, reverse=True):
                    problems.append(f"not best first: {cvs}")
                driver.save_screenshot(os.path.join(args.shots, "training.png"))
                driver.find_element(By.ID, "train-version").click()
                wait.until(ec.presence_of_element_located((By.TAG_NAME, "h1")))
                if not driver.current_url.endswith("/models/churn-console/v1"):
                    problems.append(f"the saved version's link leads to {driver.current_url}")
        except Exception as exc:  # noqa: BLE001 - reported as a failed check
            problems.append(err_text(exc))
        ck.check("training: a model trained from the lake, its leaderboard filling in live, "
                 "then its version", problems)

        # 4. The model page's threshold slider.
        driver.find_element(By.LINK_TEXT, "Models").click()
        wait.until(ec.presence_of_element_located((By.LINK_TEXT, "churn"))).click()
        wait.until(ec.presence_of_element_located((By.LINK_TEXT, "v1"))).click()
        slider = wait.until(ec.visibility_of_element_located((By.ID, "threshold")))

        def matrix():
            return {k: int(driver.find_element(By.ID, k).text) for k in ("tp", "fp", "fn", "tn")}

        before = matrix()
        total = sum(before.values())
        slider.send_keys(Keys.END)
        low = matrix()
        slider.send_keys(Keys.HOME)
        high = matrix()
        text = driver.find_element(By.ID, "at-threshold").text
        problems = []
        if low["fn"] != 0 or low["tn"] != 0:
            problems.append(f"lowest cut {low}: not every row positive")
        if high["tp"] + high["fp"] < 1 or high == low:
            problems.append(f"highest cut {high}")
        for m in (low, high):
            if sum(m.values()) != total:
                problems.append(f"{m} does not add up to {total}")
        if not text.startswith("precision "):
            problems.append(f"figures {text!r}")
        ck.check("model page: the threshold slider moves the confusion matrix", problems)
        driver.save_screenshot(os.path.join(args.shots, "model.png"))

        # 4b. What-if, batch prediction and promotion.
        driver.get(console + "/models/churn")
        wait.until(ec.presence_of_element_located((By.LINK_TEXT, "Predict"))).click()
        contract_el = wait.until(ec.presence_of_element_located(
            (By.XPATH, "//label[text()='Contract']/following-sibling::select")))
        contract = Select(contract_el)
        predicted = driver.find_element(By.ID, "predicted").text
        rows_before = len(driver.find_elements(By.CSS_SELECTOR, "table.contributions-table tbody tr"))
        driver.execute_script("window.__same_page = true")
        problems = []
        if not predicted.startswith("Predicted: "):
            problems.append(f"prediction {predicted!r}")
        if rows_before < 10:
            problems.append(f"{rows_before} contribution rows")
        choice = "Two year" if contract.first_selected_option.text != "Two year" else "Month-to-month"
        contract.select_by_visible_text(choice)
        try:
            wait.until(lambda d: ("Contract=" + choice.replace(" ", "+")) in d.current_url)
            wait.until(lambda d: any(
                th.text == f"Contract = {choice}"
                for th in d.find_elements(By.CSS_SELECTOR, "table.contributions-table th")))
        except Exception as exc:  # noqa: BLE001
            problems.append(f"no update after choosing {choice}: {err_text(exc)}")
        if not driver.execute_script("return window.__same_page === true"):
            problems.append("the page reloaded")
        ck.check("predict: the what-if form updates the prediction and its contributions live", problems)

        data_dir = os.path.join(tmp, "data")

        def predict_cli(src, dst):
            subprocess.run(
                [args.millrace, "--data-dir", data_dir, "predict", "--model", "churn:v1",
                 "--input", src, "--output", dst],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            with open(dst, newline="") as f:
                return list(csv.DictReader(f))

        record = dict(parse_qsl(urlparse(driver.current_url).query, keep_blank_values=True))
        one = os.path.join(tmp, "what-if.csv")
        with open(one, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(list(record))
            w.writerow(list(record.values()))
        shown = driver.find_element(By.ID, "probability").text.split()[-1]
        cli = float(predict_cli(one, os.path.join(tmp, "what-if-out.csv"))[0]["probability"])
        ck.check(
            "predict: the what-if probability is millrace predict's for the same record",
            [] if abs(float(shown) - cli) <= 0.00005 + 1e-12 else [f"page {shown}, cli {cli}"],
        )

        # Timed in the page (a MutationObserver sees the new contributions), so WebDriver's own
        # round trips are not counted.
        driver.set_script_timeout(10)
        rounds = []
        for i in range(20):
            pick = ("Month-to-month", "One year")[i % 2]
            rounds.append(driver.execute_async_script(
                """
                const [id, pick, done] = arguments;
                const select = document.getElementById(id);
                const out = document.getElementById("outcome");
                const t = performance.now();
                const seen = new MutationObserver(() => {
                  if (out.textContent.includes("Contract = " + pick)) {
                    seen.disconnect();
                    done(performance.now() - t);
                  }
                });
                seen.observe(out, { childList: true, subtree: true });
                select.value = pick;
                select.dispatchEvent(new Event("change", { bubbles: true }));
                """,
                contract_el.get_attribute("id"),
                pick,
            ))
        rounds.sort()
        note(f"what-if round trip in the browser over 20 changes (choose → new contributions "
             f"shown): p50 {rounds[10]:.1f} ms, p95 {rounds[18]:.1f} ms, max {rounds[-1]:.1f} ms")
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(os.path.join(args.shots, "predict.png"))

        upload = head(args.csv, os.path.join(tmp, "score-me.csv"), 50)
        driver.find_element(By.ID, "csv").send_keys(upload)
        driver.find_element(By.CSS_SELECTOR, "form.batch button").click()
        problems = []
        got = wait_download(downloads, "churn-v1-predictions.csv", problems)
        if got:
            with open(got, newline="") as f:
                scored = list(csv.DictReader(f))
            if len(scored) != 50:
                problems.append(f"{len(scored)} rows back, 50 sent")
            if scored and not {"customerID", "predicted_label", "probability"} <= set(scored[0]):
                problems.append(f"columns {list(scored[0])}")
            if any(r["predicted_label"] not in ("Yes", "No") for r in scored):
                problems.append("a row without a prediction")
            if scored != predict_cli(upload, os.path.join(tmp, "cli-out.csv")):
                problems.append("the download differs from millrace predict's output")
        ck.check("predict: a CSV uploaded in the browser comes back with a prediction per row", problems)

        driver.get(console + "/models/churn")
        driver.find_element(By.CSS_SELECTOR, "td.actions button").click()
        note_text = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "p.note"))).text
        ck.check(
            "models: Promote makes v1 the production version",
            [] if note_text == "v1 is now in production." else [f"note {note_text!r}"],
        )

        # 5. Keyboard.
        driver.get(console + "/")
        body = driver.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.TAB)
        first = driver.switch_to.active_element
        ck.check(
            "keyboard: Tab reaches the skip link first",
            [] if first.text == "Skip to content" else [f"focused {first.text!r}"],
        )

        # 6. A phone.
        driver.quit()
        driver = browser(390, 844)
        driver.get(console + "/streams/churn")
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth > window.innerWidth + 1"
        )
        ck.expect(not overflow, "phone: the stream page fits the width (tables scroll)")
        driver.save_screenshot(os.path.join(args.shots, "phone-stream.png"))
        wide = []
        for path in ("/", "/lake?prefix=raw%2F", "/train", "/train/new?prefix=raw%2F",
                     "/models/churn/v1", "/models/churn/v1/predict", "/quality", "/monitor"):
            driver.get(console + path)
            if driver.execute_script(
                    "return document.documentElement.scrollWidth > window.innerWidth + 1"):
                wide.append(path)
        ck.check("phone: every other page fits the width too", [f"wider than a phone: {wide}"] if wide else [])
    except Exception as exc:  # noqa: BLE001 - a crash is a failed check, with its reason
        ck.check("console flows ran to the end", [err_text(exc)])
    finally:
        stop(driver, up)
    signin_flow(args, ck)
    s3_lake_flow(args, ck)
    pipeline_flow(args, ck)
    print(ck.summary())
    sys.exit(1 if ck.failed else 0)


def pipeline_flow(args, ck):
    """The example pipeline (examples/millrace.toml, its addresses made free ports): every
    shared Telco row put with boto3, then the overview watched in the browser until all seven
    stages run: delivered, prepared, trained, served and scored, without a reload."""
    import re
    import shutil

    tmp = tempfile.mkdtemp(prefix="millrace-pipeline-")
    examples = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")
    shutil.copytree(examples, os.path.join(tmp, "examples"))
    cfg = os.path.join(tmp, "examples", "millrace.toml")
    with open(cfg) as f:
        text = re.sub(r'(addr\s*=\s*)"127\.0\.0\.1:\d+"', r'\1"127.0.0.1:0"', f.read())
    with open(cfg, "w") as f:
        f.write(text)
    with open(args.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    up = driver = None
    problems = []
    try:
        up, urls = launch(args.millrace, tmp, cfg)
        driver = browser(1280, 900)
        driver.get(urls["console"] + "/")
        driver.execute_script("window.__same_page = true")
        put_rows(urls["kinesis"], rows)

        def stages(d):
            return {tr.get_attribute("id")[4:]: (tr.get_attribute("class"),
                                                 tr.find_element(By.CSS_SELECTOR, '[data-field="detail"]').text)
                    for tr in d.find_elements(By.CSS_SELECTOR, "table.stages tbody tr")}

        def all_running(d):
            st = stages(d)
            return (len(st) == 7
                    and all(cls in ("running", "idle") for cls, _ in st.values())
                    and "serving churn:v" in st["endpoint"][1]
                    and not st["scoring"][1].startswith("0 scored"))
        try:
            WebDriverWait(driver, 300, poll_frequency=1,
                          ignored_exceptions=(StaleElementReferenceException,)).until(all_running)
        except Exception as exc:  # noqa: BLE001 - reported with the stages seen
            problems.append(f"{err_text(exc)}; stages {stages(driver)}")
        if not driver.execute_script("return window.__same_page === true"):
            problems.append("the overview reloaded")
        driver.save_screenshot(os.path.join(args.shots, "pipeline.png"))
    except Exception as exc:  # noqa: BLE001 - reported as a failed check
        problems.append(err_text(exc))
    finally:
        stop(driver, up)
    ck.check(f"example pipeline: {len(rows)} Telco rows put, the overview shows all seven stages "
             "running (delivered, prepared, trained, served, scored) without a reload", problems)


def s3_lake_flow(args, ck):
    """An S3 lake (moto's S3 server): the delivery's s3:// location listed at the lake's top,
    browsed down to its objects, an NDJSON and a Parquet object previewed; a bucket the
    configuration does not name is not found."""
    import socket

    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = tempfile.mkdtemp(prefix="millrace-s3lake-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
             "AWS_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in creds}
    os.environ.update(creds)
    up = driver = None
    problems = []
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        deadline = time.monotonic() + 30
        while True:
            try:
                s3.create_bucket(Bucket="lakebkt")
                break
            except Exception:  # noqa: BLE001 - moto still starting
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        lines = "".join(json.dumps({"customerID": f"S3-{i}", "tenure": i}) + "\n" for i in range(5))
        s3.put_object(Bucket="lakebkt", Key="lake/raw/part-0.ndjson", Body=lines.encode())
        table = pa.table({"customerID": [f"P-{i}" for i in range(3)], "MonthlyCharges": [1.5, 2.5, 3.5]})
        pq.write_table(table, os.path.join(tmp, "p.parquet"))
        with open(os.path.join(tmp, "p.parquet"), "rb") as f:
            s3.put_object(Bucket="lakebkt", Key="lake/curated/part-0.parquet", Body=f.read())
        up, urls = start_up(args.millrace, tmp, lake="s3://lakebkt/lake",
                            head=f'[lake]\ns3_endpoint_url = "{endpoint}"\ns3_path_style = true\n')
        console = urls["console"]
        driver = browser(1280, 900)
        wait = WebDriverWait(driver, 20)
        driver.get(console + "/lake")
        wait.until(ec.presence_of_element_located((By.LINK_TEXT, "s3://lakebkt/lake/"))).click()
        wait.until(ec.presence_of_element_located((By.LINK_TEXT, "raw/"))).click()
        wait.until(ec.presence_of_element_located((By.LINK_TEXT, "part-0.ndjson"))).click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "table.preview")))
        cells = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "table.preview td")]
        if "S3-0" not in cells or "S3-4" not in cells:
            problems.append(f"NDJSON preview {cells[:12]}")
        driver.save_screenshot(os.path.join(args.shots, "lake-s3.png"))
        # Up the breadcrumb to the bucket, and back down to the location.
        driver.find_element(By.LINK_TEXT, "s3://lakebkt").click()
        wait.until(ec.presence_of_element_located((By.LINK_TEXT, "lake/"))).click()
        wait.until(ec.presence_of_element_located((By.LINK_TEXT, "curated/")))
        driver.get(console + "/lake?prefix=s3%3A%2F%2Flakebkt%2Flake%2Fcurated%2F")
        wait.until(ec.presence_of_element_located((By.LINK_TEXT, "part-0.parquet"))).click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "table.preview")))
        cells = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "table.preview td")]
        if cells[:2] != ["P-0", "1.5"]:
            problems.append(f"Parquet preview {cells[:6]}")
        for outside in ("s3%3A%2F%2Flakebkt%2Fother%2F", "s3%3A%2F%2Fanother%2F",
                        "s3%3A%2F%2Flakebkt%2Flake%2F..%2F"):
            driver.get(console + "/lake?prefix=" + outside)
            if "Not found" not in driver.find_element(By.TAG_NAME, "h1").text:
                problems.append(f"{outside}: {driver.find_element(By.TAG_NAME, 'main').text[:120]!r}")
    except Exception as exc:  # noqa: BLE001 - reported as a failed check
        problems.append(err_text(exc))
    finally:
        stop(driver, up)
        moto.terminate()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    ck.check("lake on S3: the delivery's bucket browsed to an NDJSON and a Parquet object, "
             "other buckets not found", problems)


def signin_flow(args, ck):
    """Under [auth] enforce: sign in with an access key in the browser, read what the
    identity's policy allows, be refused the rest, sign out."""
    tmp = tempfile.mkdtemp(prefix="millrace-signin-")
    policy = os.path.join(tmp, "analyst.json")
    with open(policy, "w") as f:
        json.dump({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Resource": "*",
            "Action": ["millrace:GetStatus", "kinesis:List*", "kinesis:Describe*"]}]}, f)
    out = subprocess.run(
        [args.millrace, "identity", "add", "analyst", "--identities",
         os.path.join(tmp, "identities.toml"), "--policy", policy],
        check=True, capture_output=True, text=True)
    key = json.loads(out.stdout)
    up, urls = start_up(args.millrace, tmp,
                        '[auth]\nmode = "enforce"\nidentities = "identities.toml"\n')
    console = urls["console"]
    driver = None
    problems = []
    try:
        driver = browser(1280, 900)
        wait = WebDriverWait(driver, 20)
        driver.get(console + "/streams")
        wait.until(ec.presence_of_element_located((By.ID, "access_key_id")))
        if "/signin?next=%2Fstreams" not in driver.current_url:
            problems.append(f"not sent to sign in: {driver.current_url}")
        driver.find_element(By.ID, "access_key_id").send_keys(key["AccessKeyId"])
        driver.find_element(By.ID, "secret_access_key").send_keys(key["SecretAccessKey"])
        driver.save_screenshot(os.path.join(args.shots, "signin.png"))
        driver.find_element(By.CSS_SELECTOR, "form button").click()
        who = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "header .who"))).text
        if who != "signed in as analyst" or not driver.current_url.endswith("/streams"):
            problems.append(f"after sign-in: {who!r} at {driver.current_url}")
        cookies = {c["name"]: c for c in driver.get_cookies()}
        c = cookies.get("millrace_console")
        if not c or not c.get("httpOnly") or c.get("sameSite") != "Strict":
            problems.append(f"session cookie {c}")
        if driver.execute_script("return document.cookie").find("millrace_console") >= 0:
            problems.append("the page's script can read the session cookie")
        driver.get(console + "/lake")
        main = driver.find_element(By.TAG_NAME, "main").text
        if "AccessDeniedException" not in main or "s3:ListBucket" not in main:
            problems.append(f"/lake for the analyst: {main[:200]!r}")
        driver.find_element(By.LINK_TEXT, "Sign out").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "form button"))).click()
        wait.until(ec.presence_of_element_located((By.ID, "access_key_id")))
        driver.get(console + "/streams")
        wait.until(ec.presence_of_element_located((By.ID, "access_key_id")))
    except Exception as exc:  # noqa: BLE001 - reported as a failed check
        problems.append(err_text(exc))
    finally:
        stop(driver, up)
    ck.check("sign-in: an access key in the browser, its policy's pages only, then signed out",
             problems)


if __name__ == "__main__":
    main()
