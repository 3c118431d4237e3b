"""Executors behind one interface: in-process threads, local worker processes, and Dask."""
from engine.executors.base import Executor, NodeTask, TaskHandle, TaskOutcome, execute_task
from engine.executors.inprocess import InProcessExecutor
from engine.executors.process import LocalProcessExecutor

__all__ = ["Executor", "NodeTask", "TaskHandle", "TaskOutcome", "execute_task", "InProcessExecutor",
           "LocalProcessExecutor"]
