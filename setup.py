"""The C part of wasitrace: the recording hot path (tracer/_record.c); everything else is in
pyproject.toml. Optional: where it cannot be built, tracer/tracing.py records in Python."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("tracer._record", ["tracer/_record.c"], optional=True, extra_compile_args=["-O2"])
    ]
)
