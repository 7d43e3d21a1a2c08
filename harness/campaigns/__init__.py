"""Runs of many iterations and what they share: repro, matrix, bench, the options, the README's
scenario table.
"""
