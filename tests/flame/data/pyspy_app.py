import subprocess
import sys
import threading
import time


def spin(seconds):
    end = time.time() + seconds
    while time.time() < end:
        sum(range(500))

def nap():
    time.sleep(0.6)

if __name__ == "__main__":
    child = subprocess.Popen([sys.executable, "-c", "import app\napp.spin(0.5)"])
    sleeper = threading.Thread(target=nap, name="sleeper")
    sleeper.start()
    spin(0.6)
    sleeper.join()
    child.wait()
