"""Recipes that make the package's shipped data (not part of the installed package):
``python -m recipes.train_geo`` trains the geo pipeline in entity_linker/data/geo_pipeline.
"""
