"""Reading what the system under test said, without I/O: kernel logs and oopses, fio's logs and
blocks, the timeline, the verdict model.
"""
