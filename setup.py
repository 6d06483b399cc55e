"""Build hook for the one optional compiled module; all metadata lives in pyproject.toml.

``zsbench_ntu._skeleton_c`` speeds up parsing of raw NTU ``.skeleton`` files. It is
optional: without a C compiler the build goes on without it and ``zsbench data prepare``
uses the pure-numpy parser, which produces the same arrays.
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("zsbench_ntu._skeleton_c",
                             sources=["plugins/zsbench_ntu/_skeleton_c.c"],
                             optional=True)])
