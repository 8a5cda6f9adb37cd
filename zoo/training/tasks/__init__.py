"""The training tasks, by the name the model registry records (`register_model(task=...)`)."""

from __future__ import annotations

from zoo.registry import model_info
from zoo.training.tasks.base import Option, Prepared, Task
from zoo.training.tasks.classification import ClassificationTask
from zoo.training.tasks.detection import DetectionTask
from zoo.training.tasks.reconstruction import ReconstructionTask
from zoo.training.tasks.text import TextTask

TASKS = {task.name: task for task in (ClassificationTask(), TextTask(), DetectionTask(),
                                      ReconstructionTask())}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]


def task_for_model(model: str) -> Task:
    """The task that trains the registered model `model`."""
    import zoo.models  # noqa: F401  (registers the models)

    return get_task(model_info(model).task)


__all__ = ["TASKS", "Option", "Prepared", "Task", "get_task", "task_for_model"]
