#!/usr/bin/env python3
"""Headless Chromium (Debian chromium + chromium-driver) driven by Selenium against a live server: the
viewer at / loads with no console errors, the demo tile is segmented, the overlay and the legend with
the domain's class names appear. Saves a screenshot. Usage: viewer_check.py URL SCREENSHOT.png
Prints "skip: ..." and exits 0 when selenium or chromium/chromedriver is missing."""
import shutil
import sys

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as e:
    print(f"skip: {e}")
    sys.exit(0)
driver_path = shutil.which("chromedriver")
browser = shutil.which("chromium") or shutil.which("chromium-browser")
if not driver_path or not browser:
    print("skip: chromium/chromedriver not installed (apt-get install chromium chromium-driver)")
    sys.exit(0)

url, shot = sys.argv[1], sys.argv[2]
opts = webdriver.ChromeOptions()
opts.binary_location = browser
for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1100"]:
    opts.add_argument(a)
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
d = webdriver.Chrome(service=Service(driver_path), options=opts)
try:
    d.get(url + "/")
    wait = WebDriverWait(d, 120)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#domain option"))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#legend li"))
    d.find_element(By.ID, "demo").click()
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith(("done", "error")))
    status = d.find_element(By.ID, "status").text
    assert status.startswith("done"), status
    legend = d.find_element(By.ID, "legend").text
    assert "class_0" in legend and "%" in legend, legend
    painted = d.execute_script("const c = document.getElementById('overlay'); const a = c.getContext('2d')"
                               ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
                               "for (let i = 3; i < a.length; i += 4) if (a[i]) n++; return n;")
    assert painted > 0, "overlay is empty"
    errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    d.save_screenshot(shot)
    print(f"viewer: ok ({status}); {painted} overlay pixels; screenshot {shot}")
finally:
    d.quit()
