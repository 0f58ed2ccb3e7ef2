# cuda-gdb batch script for a crash with no usable stack (pc 0): prints the
# symbols of the stack's words, among them the caller's return address.
#   cuda-gdb -q -batch -x bench/gpu/backtrace.gdb --args build-cuda/tracelm train ...
set pagination off
set print thread-events off
run
bt 30
info registers rip rsp
set $i = 0
while $i < 48
  info symbol *(long*)($sp + 8*$i)
  set $i = $i + 1
end
