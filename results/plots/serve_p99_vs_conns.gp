set title 'serve: p99 latency against concurrency'
set xlabel 'keep-alive connections'
set ylabel 'p99 latency (ms)'
set key outside right
set grid
set logscale x 10
set logscale y 10
set terminal svg size 800,450 dynamic
set output 'serve_p99_vs_conns.svg'
plot 'serve_p99_vs_conns.dat' index 0 using 1:2 with linespoints lw 2 title 'eddy-async', 'serve_p99_vs_conns.dat' index 1 using 1:2 with linespoints lw 2 title 'threaded', 'serve_p99_vs_conns.dat' index 2 using 1:2 with linespoints lw 2 title 'nginx', 'serve_p99_vs_conns.dat' index 3 using 1:2 with linespoints lw 2 title 'h2o', 'serve_p99_vs_conns.dat' index 4 using 1:2 with linespoints lw 2 title 'aiohttp', 'serve_p99_vs_conns.dat' index 5 using 1:2 with linespoints lw 2 title 'aiohttp-uvloop'
set terminal pngcairo size 800,450
set output 'serve_p99_vs_conns.png'
plot 'serve_p99_vs_conns.dat' index 0 using 1:2 with linespoints lw 2 title 'eddy-async', 'serve_p99_vs_conns.dat' index 1 using 1:2 with linespoints lw 2 title 'threaded', 'serve_p99_vs_conns.dat' index 2 using 1:2 with linespoints lw 2 title 'nginx', 'serve_p99_vs_conns.dat' index 3 using 1:2 with linespoints lw 2 title 'h2o', 'serve_p99_vs_conns.dat' index 4 using 1:2 with linespoints lw 2 title 'aiohttp', 'serve_p99_vs_conns.dat' index 5 using 1:2 with linespoints lw 2 title 'aiohttp-uvloop'
