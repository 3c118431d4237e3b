"""`python -m bench` (or `make bench`): every benchmark, each printing our figure beside its anchor."""
from bench import (assetcenter_blobs, assetcenter_search, automl_wrapper, cached_rerun, dispatch, engine_overhead,
                   featurestore, gui_frames, gui_open, gui_run, gui_table, label_store, onnx_predict, profiling)

if __name__ == "__main__":
    print(f"{'benchmark':<44} {'':>4}{'figure':>16} {'':>6}{'anchor':>18}")
    engine_overhead.main()
    dispatch.main()
    cached_rerun.main()
    gui_open.main()
    gui_frames.main()
    gui_table.main()
    gui_run.main()
    profiling.main()
    featurestore.main()
    onnx_predict.main()
    automl_wrapper.main()
    assetcenter_search.main()
    assetcenter_blobs.main()
    label_store.main()
