"""Mechanisms that know no check kind: engine pool, commands, clients, processes."""
