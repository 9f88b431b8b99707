# tm_set_warnings(target): the project's warning set, as a usage requirement of
# our own targets only (never a global flag).
function(tm_set_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor
    $<$<BOOL:${TM_WERROR}>:-Werror>)
endfunction()
