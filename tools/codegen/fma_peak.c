// FMA peak of this machine in C, to check the Java probe (docs/performance.md):
//   gcc -O3 -mfma -mavx512f -DW=512 -DCHAINS=12 -o fma_peak tools/codegen/fma_peak.c -lpthread
//   ./fma_peak 2      # threads; W=256 for AVX2 vectors
// FMA peak: CHAINS independent FMA chains per thread, W-bit vectors (gcc -O3 -mfma -mavx512f).
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <time.h>
#ifndef CHAINS
#define CHAINS 12
#endif
#ifndef W
#define W 256
#endif
#if W == 512

#endif
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static long iters = 400000000L/CHAINS;
static void* body(void* out){
#if W == 512
  __m512 m=_mm512_set1_ps(0.999999f), c=_mm512_set1_ps(1e-7f), a[CHAINS];
  for(int i=0;i<CHAINS;i++) a[i]=_mm512_set1_ps(1.f+i);
  for(long it=0;it<iters;it++){
    #pragma GCC unroll 32
    for(int i=0;i<CHAINS;i++) a[i]=_mm512_fmadd_ps(a[i],m,c);
  }
  float s=0; for(int i=0;i<CHAINS;i++) s+=_mm512_reduce_add_ps(a[i]);
#else
  __m256 m=_mm256_set1_ps(0.999999f), c=_mm256_set1_ps(1e-7f), a[CHAINS];
  for(int i=0;i<CHAINS;i++) a[i]=_mm256_set1_ps(1.f+i);
  for(long it=0;it<iters;it++){
    #pragma GCC unroll 32
    for(int i=0;i<CHAINS;i++) a[i]=_mm256_fmadd_ps(a[i],m,c);
  }
  float s=0; float t[8]; for(int i=0;i<CHAINS;i++){_mm256_storeu_ps(t,a[i]); s+=t[0];}
#endif
  *(float*)out=s; return 0;
}
int main(int argc,char**argv){
  int th=argc>1?atoi(argv[1]):2; pthread_t p[64]; float o[64];
  double best=0, all[15];
  for(int r=0;r<15;r++){
  double t0=now(); for(int i=0;i<th;i++) pthread_create(&p[i],0,body,&o[i]);
  for(int i=0;i<th;i++) pthread_join(p[i],0);
  double dt=now()-t0; double flops=(double)th*iters*CHAINS*2*(W/32);
  all[r]=flops/dt/1e9; if(all[r]>best) best=all[r];}
  for(int i=0;i<15;i++)for(int j=i+1;j<15;j++) if(all[j]<all[i]){double t=all[i];all[i]=all[j];all[j]=t;}
  printf("W=%d chains=%d threads=%d: best %.1f median %.1f GFLOP/s (15 bursts)\n",W,CHAINS,th,best,all[7]);
  return 0;
}
