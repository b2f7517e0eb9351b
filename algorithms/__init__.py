"""The base layer: algorithms, the job runner, and what every layer shares (store, schema).

Nothing here imports the rest of Skiff, and nothing here imports Prefect: this is the code
that runs on a training machine.
"""
