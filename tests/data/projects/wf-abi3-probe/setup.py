"""One stable-ABI extension (abi3, cp39 and newer) for wheelfarm's probe tests."""

from setuptools import Extension, setup

setup(
    packages=["wf_abi3_probe"],
    package_dir={"": "src"},
    ext_modules=[
        Extension(
            "wf_abi3_probe._native",
            ["src/wf_abi3_probe/native.c"],
            py_limited_api=True,
            define_macros=[("Py_LIMITED_API", "0x03090000")],
        )
    ],
    options={"bdist_wheel": {"py_limited_api": "cp39"}},
)
