# The package's one version: pyproject.toml, the CMake project and s3torchconnectorclient read it here.
# 1.6: the original 1.5 API plus our additions, so requirements such as ">=1.5" or "~=1.5" accept it.
__version__ = "1.6.0"
