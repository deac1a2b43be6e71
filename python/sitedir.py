#!/usr/bin/env python3
"""Where `meson install` puts the remodel package: a site directory under PREFIX that
this Python searches. Meson 1.0 answers Debian's layout for /usr
(lib/python3/dist-packages) also for /usr/local, which Debian's Python does not search
(it searches /usr/local/lib/python3.X/dist-packages); keep meson's answer when the
interpreter searches it or no site directory under PREFIX is searched.

usage: sitedir.py PREFIX MESON_PURELIBDIR
"""
import os
import site
import sys

prefix, meson_dir = os.path.normpath(sys.argv[1]), os.path.normpath(sys.argv[2])
searched = {os.path.normpath(p) for p in sys.path if p}
if meson_dir in searched:
    print(meson_dir)
else:
    under = [os.path.normpath(d) for d in site.getsitepackages([prefix])
             if os.path.normpath(d).startswith(prefix.rstrip("/") + "/")]
    print(next((d for d in under if d in searched), meson_dir))
