"""What the operator and the worker side both stand on, and nothing else.

The CRD's coordinates and defaults, the routing ConfigMap's format, the names of the
metric contract, and the environment and process helpers every process uses. This
package imports no other package of the project (an import contract in pyproject.toml
checks that), so neither side has to import the other to agree with it.
"""
