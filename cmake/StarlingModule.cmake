# starling_module(NAME DIR PUBLIC_DEPS... [PRIVATE priv...])
# One static library per module from every .c in its folder (main.c excepted), whose only
# public include directory is the module's include/.
function(starling_module name)
    cmake_parse_arguments(M "" "" "PUBLIC;PRIVATE" ${ARGN})
    file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.c)
    list(FILTER srcs EXCLUDE REGEX "/main\\.c$")
    if(NOT srcs)
        # A module without sources yet is just its headers.
        add_library(${name} INTERFACE)
        target_include_directories(${name} INTERFACE ${CMAKE_CURRENT_SOURCE_DIR}/include)
        target_link_libraries(${name} INTERFACE ${M_PUBLIC})
        return()
    endif()
    add_library(${name} STATIC ${srcs})
    target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                       PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
    target_link_libraries(${name} PUBLIC ${M_PUBLIC} PRIVATE ${M_PRIVATE})
endfunction()
