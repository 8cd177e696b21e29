"""Scripted conversations run offline and checked: the barge-in regression suite (`duplex-test`)."""
