"""Project settings (see Kedro's configuration docs for the defaults left out here)."""

from kedro.config import OmegaConfigLoader

from activation_compare.hooks import MlflowTrackingHook, ProgressHooks, ProjectHooks, RunSummaryHook
from activation_compare.session_store import UniqueRunSessionStore

# The project hook validates the run's parameters once; the others read them from it.
_PROJECT = ProjectHooks()
# after_pipeline_run is called last-registered first: the summary's verdict and
# paths, then the tracking hook's MLflow link.
HOOKS = (_PROJECT, ProgressHooks(_PROJECT), MlflowTrackingHook(), RunSummaryHook())

# Run ids (output versions, MLflow tags) unique even for runs started in the same millisecond.
SESSION_STORE_CLASS = UniqueRunSessionStore

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Environments override parameters key by key instead of whole sections.
    "merge_strategy": {"parameters": "soft", "globals": "soft"},
    "config_patterns": {
        # Where MLflow runs go: conf/<env>/mlflow.yml
        "mlflow": ["mlflow*", "mlflow*/**"],
    },
}
