/* Undoes core/generic.h so the next instantiation can redefine everything. */
#undef real
#undef CL_FN
#undef CL_DTYPE
#undef CL_GEMM
#undef CL_GEMV
#undef CL_AXPY
#undef CL_DOT
#undef CL_SCAL
#undef CL_SQRT
#undef CL_EXP
#undef CL_LOG
#undef CL_TANH
#undef CL_FABS
#undef CL_DOUBLE
