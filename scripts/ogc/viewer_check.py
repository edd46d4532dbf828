#!/usr/bin/env python3
"""Headless Chromium (Debian chromium + chromium-driver) driven by Selenium against a live server (jobs
enabled): the viewer at / loads with no console errors; the demo tile is segmented and the overlay and
the legend with the domain's class names appear; a GeoTIFF tile (made with rasterio, when installed) is
drawn in false colour and the arrow keys on the focused overlay read the class and the map coordinates
in its CRS; a demo scene job shows its progress to 100 % and its result COG is drawn level by level
through range requests; every control is reached with Tab; at 200 % zoom nothing overflows sideways.
Saves screenshots (tile, scene, 200 %). Usage: viewer_check.py URL SCREENSHOT_DIR
Prints "skip: ..." and exits 0 when selenium or chromium/chromedriver is missing."""
import os
import shutil
import sys
import tempfile

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError as e:
    print(f"skip: {e}")
    sys.exit(0)
driver_path = shutil.which("chromedriver")
browser = shutil.which("chromium") or shutil.which("chromium-browser")
if not driver_path or not browser:
    print("skip: chromium/chromedriver not installed (apt-get install chromium chromium-driver)")
    sys.exit(0)

url, shots = sys.argv[1], sys.argv[2]
os.makedirs(shots, exist_ok=True)
opts = webdriver.ChromeOptions()
opts.binary_location = browser
for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1100"]:
    opts.add_argument(a)
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})

PAINTED = ("const c = document.getElementById(arguments[0]); const a = c.getContext('2d')"
           ".getImageData(0, 0, c.width, c.height).data; let n = 0, grey = 0;"
           "for (let i = 0; i < a.length; i += 4) { if (a[i + 3]) n++; if (a[i] === 204 && a[i + 1] === 204 && a[i + 2] === 204) grey++; }"
           "return [n, grey];")


def geotiff_tile(path, bands):
    """A deflate, predictor-2 uint16 GeoTIFF in UTM 33N; None when rasterio is missing."""
    try:
        import numpy as np
        import rasterio
        from rasterio.transform import from_origin
    except ImportError:
        return None
    y, x = np.mgrid[0:224, 0:224]
    data = np.stack([(1000 + 800 * np.sin((x + 9 * b) / 17.0) * np.cos(y / 23.0)) for b in range(bands)]).astype("uint16")
    with rasterio.open(path, "w", driver="GTiff", width=224, height=224, count=bands, dtype="uint16", crs="EPSG:32633",
                       transform=from_origin(500000, 4200000, 10, 10), compress="deflate", predictor=2,
                       tiled=True, blockxsize=128, blockysize=128) as f:
        f.write(data)
    return path


d = webdriver.Chrome(service=Service(driver_path), options=opts)
try:
    d.get(url + "/")
    wait = WebDriverWait(d, 300)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#domain option"))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#legend li"))
    status = lambda: d.find_element(By.ID, "status").text

    # Tab reaches every control, the overlay included.
    d.find_element(By.TAG_NAME, "body").click()
    reached = set()
    for _ in range(60):
        ActionChains(d).send_keys(Keys.TAB).perform()  # to the page, not to an element (a file input takes keys as a path)
        reached.add(d.switch_to.active_element.get_attribute("id"))
    for control in ["domain", "file", "demo", "scenefile", "demoscene", "bands", "opacity", "overlay", "cls0"]:
        assert control in reached, f"Tab never reaches #{control}: {sorted(x for x in reached if x)}"

    # The demo tile.
    d.find_element(By.ID, "demo").click()
    wait.until(lambda d: status().startswith(("done", "error")))
    assert status().startswith("done"), status()
    legend = d.find_element(By.ID, "legend").text
    assert "class_0" in legend and "%" in legend, legend
    painted, _ = d.execute_script(PAINTED, "overlay")
    assert painted > 0, "overlay is empty"
    d.save_screenshot(os.path.join(shots, "viewer.png"))
    tile_status = status()

    # A GeoTIFF tile: false colour, and the arrow keys on the overlay read class and map coordinates.
    bands = int(d.execute_script("return (document.getElementById('card').textContent.match(/(\\d+) bands/) || [0, 4])[1]"))
    tif = geotiff_tile(os.path.join(tempfile.mkdtemp(), "tile.tif"), bands)
    if tif:
        d.execute_script("document.getElementById('status').textContent = ''")
        d.find_element(By.ID, "file").send_keys(tif)
        wait.until(lambda d: status().startswith(("done", "error")))
        assert status().startswith("done") and "no false colour" not in status(), status()
        _, grey = d.execute_script(PAINTED, "base")
        assert grey < 224 * 224 // 2, f"the GeoTIFF was not drawn ({grey} grey pixels)"
        d.find_element(By.ID, "overlay").send_keys(Keys.ARROW_RIGHT)
        pointer = d.find_element(By.ID, "pointer").text
        assert pointer.startswith("pixel (113, 112)") and "(EPSG:32633)" in pointer and "map 501135.00, 4198875.00" in pointer, pointer
        print(f"viewer: GeoTIFF tile in false colour; keyboard readout: {pointer}")
    else:
        print("viewer: GeoTIFF tile skipped: rasterio is not installed")

    # A scene job: progress to 100 %, the result COG read level by level with range requests.
    d.find_element(By.ID, "demoscene").click()
    wait.until(lambda d: status().startswith(("scene result", "error")) or "failed" in d.find_element(By.ID, "jobstatus").text)
    job = d.find_element(By.ID, "jobstatus").text
    assert status().startswith("scene result") and "successful, 100 %" in job, (status(), job)
    assert d.find_element(By.ID, "jobprogress").get_attribute("value") == "100"
    levels = Select(d.find_element(By.ID, "level"))
    assert len(levels.options) >= 2, [o.text for o in levels.options]
    first = status()
    assert first.startswith("scene result 256×256"), first  # the first look is the overview
    levels.select_by_index(0)
    wait.until(lambda d: status().startswith("scene result 512×512"))
    painted, _ = d.execute_script(PAINTED, "overlay")
    assert painted > 0, "scene overlay is empty"
    d.save_screenshot(os.path.join(shots, "viewer-scene.png"))
    print(f"viewer: scene job: {job}; {first}; then {status()}")

    # 200 % zoom: half as many CSS pixels across; nothing may overflow sideways.
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 550, "height": 1100, "deviceScaleFactor": 2, "mobile": False})
    overflow = d.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"at 200 % the page is {overflow} px wider than the window"
    d.save_screenshot(os.path.join(shots, "viewer-200.png"))

    errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    print(f"viewer: ok ({tile_status}); {painted} overlay pixels; screenshots in {shots}")
finally:
    d.quit()
