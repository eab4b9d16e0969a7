# One ctest per tests/cluster/test_*.py, label cluster: real multi-node clusters on
# 127.0.0.1-127.0.0.5 (tests/lib/cluster_harness.py), judged by tests/lib/checker.py.
# By default each scenario runs on 3 nodes with short traffic phases (CI runs this twice,
# release and sanitizers). STARLING_CLUSTER_FULL=1 in the environment of ctest adds the
# 5-node variants and longer phases:
#   STARLING_CLUSTER_FULL=1 ctest --test-dir build -L cluster --output-on-failure
# RUN_SERIAL: several clusters at once on 2 cores would miss election timeouts.
if(TARGET starling)
    set(cluster_py_env
        "STARLING_BIN=$<TARGET_FILE:starling>;PYTHONDONTWRITEBYTECODE=1")
    if(TARGET starling-ctl)
        list(APPEND cluster_py_env "STARLING_CTL=$<TARGET_FILE:starling-ctl>")
    endif()
    file(GLOB cluster_py_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/test_*.py)
    foreach(file ${cluster_py_tests})
        get_filename_component(name ${file} NAME_WE)
        add_test(NAME cluster/${name}
                 COMMAND ${SYSTEM_PYTHON3} -m pytest -q -p no:cacheprovider ${file}
                 WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
        set_tests_properties(
            cluster/${name}
            PROPERTIES LABELS cluster TIMEOUT 300 RUN_SERIAL TRUE
                       ENVIRONMENT "${cluster_py_env}")
    endforeach()
endif()
