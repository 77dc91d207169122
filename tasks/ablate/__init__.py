"""Named ablations (`ablations/<name>.yaml`) run as DVC experiments and compared in a report and MLflow."""
