# JupyterLab settings for the workbench (scripts/lab.sh puts this folder on JUPYTER_CONFIG_PATH):
# notebooks are saved without outputs, so running them leaves the repository's files unchanged.
c.ContentsManager.pre_save_hook = "invlab.widgets.saving.strip_outputs"  # noqa: F821  (c: Jupyter's config object)
