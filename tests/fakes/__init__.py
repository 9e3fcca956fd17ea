"""Local fake servers that follow the published contracts of LinkedIn, Facebook and Instagram."""
