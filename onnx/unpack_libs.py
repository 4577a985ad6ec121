#!/usr/bin/env python3
"""Copy the shared libraries (lib*.so*) of a wheel into one folder: unpack_libs.py WHEEL DEST."""
import os
import sys
import zipfile

wheel, dest = sys.argv[1], sys.argv[2]
os.makedirs(dest, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if base.startswith("lib") and ".so" in base:
            with z.open(name) as src, open(os.path.join(dest, base), "wb") as out:
                out.write(src.read())
            os.chmod(os.path.join(dest, base), 0o755)
            print(f"{wheel}: {base}")
