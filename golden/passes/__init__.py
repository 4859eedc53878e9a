"""Compiler passes over the float network graph (golden.network.Network):
import -> fold -> fuse -> quantise -> schedule/allocate -> tile -> emit.
Each pass takes a Network and returns a new one; its input is not modified."""
