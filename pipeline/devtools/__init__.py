"""Developer tooling: ground truth from real CT.gov records, fixture pages, accuracy evaluation.

Nothing here runs in the pipeline itself.  `ctgov` turns the shared CT.gov corpus into
`TrialRecord` ground truth, `render` draws that truth as Veeva-style and ClinConnect-style
pages in several markups, `build_fixtures` writes committed fixture sets, and `eval` scores
`pipeline.parse.parse_page` against the truth field by field.
"""
