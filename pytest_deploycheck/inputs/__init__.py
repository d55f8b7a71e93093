"""Reading the YAML files: line-aware loading, schemas, located values, templates."""
