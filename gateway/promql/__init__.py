"""PromQL engine: parse, plan, fetch through a `SeriesSource`, evaluate with numpy."""
